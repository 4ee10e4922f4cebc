/* Writes the seed reports of fuzz_hdf5_report (tests/fuzz/corpus/fuzz_hdf5_report/):
 * small files in the report layout (docs/report-format.md) as the workbench
 * reads them, in HDF5's default and newest file formats, with the shapes the
 * reader must refuse (an attribute of several values, fixed-length strings).
 * Python's h5py is not a dependency, so this is C:
 *   h5cc -o /tmp/make_hdf5_seeds tests/fuzz/make_hdf5_seeds.c && /tmp/make_hdf5_seeds
 * tests/fuzz/corpus/fuzz_hdf5_report (make_seeds.py runs it when h5cc is installed). */
#include <hdf5.h>
#include <stdio.h>
#include <string.h>

static void attr_str(hid_t o, const char* name, const char* v) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    hid_t s = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(o, name, t, s, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, t, &v);
    H5Aclose(a), H5Sclose(s), H5Tclose(t);
}
static void attr_f64(hid_t o, const char* name, const double* v, hsize_t n) {
    hid_t s = n == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &n, NULL);
    hid_t a = H5Acreate2(o, name, H5T_IEEE_F64LE, s, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_DOUBLE, v);
    H5Aclose(a), H5Sclose(s);
}
static void ds(hid_t loc, const char* name, hid_t ftype, hid_t mtype, const void* v, hsize_t n) {
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t s = H5Screate_simple(1, &n, NULL);
    hid_t d = H5Dcreate2(loc, name, ftype, s, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
    H5Dclose(d), H5Sclose(s), H5Pclose(lcpl);
}
static void strs(hid_t loc, const char* name, const char** v, hsize_t n, int fixed) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, fixed ? 8 : H5T_VARIABLE);
    if (fixed) {
        char buf[64] = {0};
        for (hsize_t i = 0; i < n && i < 8; ++i) strncpy(buf + 8 * i, v[i], 8);
        ds(loc, name, t, t, buf, n);
    } else {
        ds(loc, name, t, t, v, n);
    }
    H5Tclose(t);
}

static void report(const char* path, int latest, int fixed, int multi_attr) {
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (latest) H5Pset_libver_bounds(fapl, H5F_LIBVER_LATEST, H5F_LIBVER_LATEST);
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    attr_str(f, "format", "bimamba-report");
    double one = 1;
    attr_f64(f, "format_version", &one, 0);
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t m = H5Gcreate2(f, "/histograms/bi/layer_0/in_proj", lcpl, H5P_DEFAULT, H5P_DEFAULT);
    hid_t set = H5Gopen2(f, "/histograms/bi", H5P_DEFAULT);
    attr_str(set, "kind", "bi-mamba");
    attr_str(set, "checkpoint", "runs/x/checkpoints/step_00000008");
    long long counts[3] = {1, 5, 2};
    double edges[4] = {-1, -0.5, 0.5, 1}, mean = 0.1, stat[3] = {0.5, 1, 2};
    ds(m, "counts", H5T_STD_I64LE, H5T_NATIVE_LLONG, counts, 3);
    ds(m, "edges", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, edges, 4);
    attr_f64(m, "mean", &mean, 0);
    attr_f64(m, "std", multi_attr ? stat : &mean, multi_attr ? 3 : 0);
    double numel = 8;
    attr_f64(m, "numel", &numel, 0);
    H5Gclose(m), H5Gclose(set);
    const char* models[2] = {"fp16", "bi"};
    const char* cols[2] = {"ppl", "acc"};
    double values[4] = {12.5, 0.4, 20.1, 0.3};
    strs(f, "/eval/table/models", models, 2, fixed);
    strs(f, "/eval/table/columns", cols, 2, fixed);
    ds(f, "/eval/table/values", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, values, 4);
    const char* prompt[1] = {"Once"};
    const char* label[1] = {"bi"};
    const char* text[1] = {"Once upon"};
    strs(f, "/generations/prompt", prompt, 1, fixed);
    strs(f, "/generations/label", label, 1, fixed);
    strs(f, "/generations/text", text, 1, fixed);
    H5Pclose(lcpl), H5Fclose(f), H5Pclose(fapl);
}

int main(int argc, char** argv) {
    if (argc != 2) return fprintf(stderr, "usage: make_hdf5_seeds DIR\n"), 2;
    char p[4096];
    snprintf(p, sizeof p, "%s/valid_report.h5", argv[1]);
    report(p, 0, 0, 0);
    snprintf(p, sizeof p, "%s/valid_report_latest.h5", argv[1]);
    report(p, 1, 0, 0);
    snprintf(p, sizeof p, "%s/valid_fixed_strings_latest.h5", argv[1]);
    report(p, 1, 1, 0);
    snprintf(p, sizeof p, "%s/bad_attr_of_three_values_latest.h5", argv[1]);
    report(p, 1, 0, 1);
    return 0;
}
