// safetensors reader/writer: bit-exact round trips, a hand-made known file,
// every malformed-file rule refused with a message naming file and problem,
// and the f16/bf16 conversions against hand values and an independent formula.
#include <gtest/gtest.h>

#include "tests/TestUtil.h"
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "core/base/Safetensors.h"

using namespace bimamba::base;
namespace fs = std::filesystem;

namespace {
std::string tmp_dir() {
    return bimamba::test::scratch_root();
}
using bimamba::test::write_text;

std::string u64le(uint64_t n) {
    std::string s(8, '\0');
    for (int i = 0; i < 8; ++i) s[size_t(i)] = char((n >> (8 * i)) & 0xff);
    return s;
}

// A file from a header text and a data section, header length as given.
std::string make_file(const std::string& header, const std::string& data) {
    return u64le(header.size()) + header + data;
}

std::string float_bytes(std::vector<float> v) {
    return std::string(reinterpret_cast<const char*>(v.data()), v.size() * 4);
}

// Expects open() to throw a SafetensorsError mentioning the path and `problem`.
void expect_refused(const std::string& name, const std::string& bytes, const std::string& problem) {
    std::string path = tmp_dir() + "/" + name + ".safetensors";
    write_text(path, bytes);
    try {
        SafetensorsFile::open(path);
        ADD_FAILURE() << name << ": accepted a broken file";
    } catch (const SafetensorsError& e) {
        std::string msg = e.what();
        EXPECT_NE(msg.find(path), std::string::npos) << name << ": message lacks the path: " << msg;
        EXPECT_NE(msg.find(problem), std::string::npos) << name << ": expected '" << problem << "' in: " << msg;
    }
}

float bits_f(uint32_t b) {
    float f;
    std::memcpy(&f, &b, 4);
    return f;
}
uint32_t f_bits(float f) {
    uint32_t b;
    std::memcpy(&b, &f, 4);
    return b;
}
}  // namespace

TEST(Safetensors, RoundTripIsBitExactForEveryDtype) {
    std::vector<float> f32 = {1.5f, -0.0f, 3.25e-30f, std::numeric_limits<float>::infinity(), 7.0f, -123.456f};
    std::vector<double> f64 = {M_PI, -1e300, 5e-324};
    std::vector<int64_t> i64 = {-(int64_t(1) << 62), 0, 42, std::numeric_limits<int64_t>::max()};
    std::vector<int32_t> i32 = {-7, 1 << 30};
    std::vector<uint8_t> u8 = {0, 1, 254, 255, 17};
    std::vector<uint16_t> f16 = {0x3c00, 0x7bff, 0x0001, 0x8000};
    std::vector<uint16_t> bf16 = {0x3f80, 0xc049, 0x0001};
    std::vector<uint8_t> boolean = {1, 0};
    float scalar = 2.5f;

    SafetensorsWriter w;
    w.add("f32", DType::F32, {2, 3}, f32.data(), f32.size() * 4);
    w.add("f64", DType::F64, {3}, f64.data(), f64.size() * 8);
    w.add("i64", DType::I64, {2, 1, 2}, i64.data(), i64.size() * 8);
    w.add("i32", DType::I32, {2}, i32.data(), i32.size() * 4);
    w.add("u8", DType::U8, {5}, u8.data(), u8.size());
    w.add("f16", DType::F16, {4}, f16.data(), f16.size() * 2);
    w.add("bf16", DType::BF16, {1, 3}, bf16.data(), bf16.size() * 2);
    w.add("bool", DType::BOOL, {2}, boolean.data(), boolean.size());
    w.add("scalar", DType::F32, {}, &scalar, 4);
    w.add("empty", DType::F32, {0, 4}, nullptr, 0);
    w.set_metadata("format", "pt");
    w.set_metadata("note", "ünïcode \"quoted\"");
    std::string path = tmp_dir() + "/roundtrip.safetensors";
    w.write(path);
    EXPECT_FALSE(fs::exists(path + ".tmp." + std::to_string(::getpid()))) << "temporary file left behind";

    auto f = SafetensorsFile::open(path);
    EXPECT_EQ(f->file_size(), fs::file_size(path));
    auto names = f->names();  // in data-offset order
    ASSERT_EQ(names.size(), 10u);
    EXPECT_EQ(names.front(), "f32");
    EXPECT_EQ(names[1], "f64");
    EXPECT_EQ(f->metadata().at("format"), "pt");
    EXPECT_EQ(f->metadata().at("note"), "ünïcode \"quoted\"");

    auto check = [&](const std::string& name, DType d, std::vector<int64_t> shape, const void* data, size_t nbytes) {
        SCOPED_TRACE(name);
        const auto& t = f->get(name);
        EXPECT_EQ(t.dtype, d);
        EXPECT_EQ(t.shape, shape);
        ASSERT_EQ(t.nbytes, nbytes);
        if (nbytes) EXPECT_EQ(std::memcmp(t.data, data, nbytes), 0);
    };
    check("f32", DType::F32, {2, 3}, f32.data(), 24);
    check("f64", DType::F64, {3}, f64.data(), 24);
    check("i64", DType::I64, {2, 1, 2}, i64.data(), 32);
    check("i32", DType::I32, {2}, i32.data(), 8);
    check("u8", DType::U8, {5}, u8.data(), 5);
    check("f16", DType::F16, {4}, f16.data(), 8);
    check("bf16", DType::BF16, {1, 3}, bf16.data(), 6);
    check("bool", DType::BOOL, {2}, boolean.data(), 2);
    check("scalar", DType::F32, {}, &scalar, 4);
    check("empty", DType::F32, {0, 4}, nullptr, 0);
    // The data section starts 8-byte aligned (header padded with spaces).
    EXPECT_EQ(reinterpret_cast<uintptr_t>(f->get("f32").data) % 8, 0u);
    EXPECT_EQ(f->get("scalar").numel(), 1);
    EXPECT_EQ(f->get("empty").numel(), 0);
    EXPECT_THROW(f->get("missing"), SafetensorsError);
    EXPECT_FALSE(f->contains("missing"));
}

TEST(Safetensors, KnownFileBytes) {
    // Exactly what the reference `safetensors` library writes for
    // save_file({"a": torch.tensor([1.5, -2.0])}): header padded to 56 bytes.
    const std::string header = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}  ";
    ASSERT_EQ(header.size(), 56u);
    std::string bytes = std::string("\x38\0\0\0\0\0\0\0", 8) + header + std::string("\0\0\xc0\x3f\0\0\0\xc0", 8);
    std::string path = tmp_dir() + "/known.safetensors";
    write_text(path, bytes);
    auto f = SafetensorsFile::open(path);
    const auto& a = f->get("a");
    EXPECT_EQ(a.dtype, DType::F32);
    ASSERT_EQ(a.shape, std::vector<int64_t>{2});
    float v[2];
    std::memcpy(v, a.data, 8);
    EXPECT_EQ(v[0], 1.5f);
    EXPECT_EQ(v[1], -2.0f);
    EXPECT_TRUE(f->metadata().empty());

    // Our writer produces the same bytes.
    float data[2] = {1.5f, -2.0f};
    SafetensorsWriter w;
    w.add("a", DType::F32, {2}, data, 8);
    std::string out = tmp_dir() + "/known_written.safetensors";
    w.write(out);
    std::ifstream in(out, std::ios::binary);
    std::string got((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(got, bytes);
}

TEST(Safetensors, BrokenFilesAreRefusedByName) {
    const std::string ok8 = float_bytes({1.0f, 2.0f});
    const std::string a8 = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    expect_refused("zero_length", "", "too short");
    expect_refused("five_bytes", std::string("\x05\0\0\0\0", 5), "too short");
    expect_refused("truncated_header", make_file(a8, ok8).substr(0, 30), "runs past the end");
    expect_refused("header_len_past_eof", u64le(4096) + "{}", "runs past the end");
    expect_refused("absurd_header_len", u64le(uint64_t(1) << 40) + "{}", "100 MB");
    expect_refused("bad_json", make_file("{\"a\": {\"dtype\": ", ""), "not valid JSON");
    expect_refused("not_object", make_file("[1, 2]", ""), "not a JSON object");
    expect_refused("truncated_data", make_file(a8, ok8.substr(0, 4)), "past the data section");
    expect_refused("gap",
                   make_file("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                             "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
                             float_bytes({1, 2, 3})),
                   "gap");
    expect_refused("not_from_zero", make_file("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", ok8),
                   "gap");
    expect_refused("overlap",
                   make_file("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                             "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                             ok8),
                   "overlap");
    expect_refused("trailing_bytes", make_file(a8, ok8 + "xxxx"), "data section has 12 bytes");
    expect_refused("wrong_length", make_file("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", ok8),
                   "has 8 bytes but its shape and dtype need 12");
    expect_refused("unknown_dtype", make_file("{\"a\":{\"dtype\":\"F8\",\"shape\":[8],\"data_offsets\":[0,8]}}", ok8),
                   "unknown dtype 'F8'");
    expect_refused("duplicate",
                   make_file("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                             "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                             ok8),
                   "duplicate tensor name 'a'");
    expect_refused("no_dtype", make_file("{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", ok8), "'a' has no dtype");
    expect_refused("no_shape", make_file("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", ok8),
                   "'a' has no shape");
    expect_refused("no_offsets", make_file("{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", ok8),
                   "'a' has no data_offsets");
    expect_refused("negative_dim", make_file("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", ok8),
                   "negative or non-integer dimension");
    expect_refused("float_dim", make_file("{\"a\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", ok8),
                   "negative or non-integer dimension");
    expect_refused("begin_after_end",
                   make_file("{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,0]}}", ok8), "begin > end");
    expect_refused("metadata_not_string",
                   make_file("{\"__metadata__\":{\"format\":3},"
                             "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
                             ok8),
                   "__metadata__ value of 'format' is not a string");
    expect_refused(
        "huge_shape",
        make_file("{\"a\":{\"dtype\":\"F64\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}", ok8), "'a'");
    // Found with tests/fuzz/fuzz_safetensors: with a zero dimension the data is
    // empty, and the dimensions before it overflowed int64 in numel() (or one
    // above 2^63 came back negative in the shape).
    expect_refused(
        "overflow_before_zero",
        make_file("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,2147483648,0],\"data_offsets\":[0,0]}}", ""),
        "shape overflows");
    expect_refused(
        "dim_past_int64",
        make_file("{\"a\":{\"dtype\":\"F32\",\"shape\":[18446744073709551615,0],\"data_offsets\":[0,0]}}", ""),
        "shape overflows");
    // A directory is not a file.
    try {
        SafetensorsFile::open(tmp_dir());
        ADD_FAILURE() << "opened a directory";
    } catch (const SafetensorsError& e) {
        EXPECT_NE(std::string(e.what()).find("not a regular file"), std::string::npos) << e.what();
    }
    EXPECT_THROW(SafetensorsFile::open(tmp_dir() + "/does_not_exist.safetensors"), SafetensorsError);
}

// model.safetensors.index.json: the weight_map is read; a shard that is not a
// plain .safetensors file in the index's folder is refused by name.
TEST(Safetensors, ShardIndexNamesOnlyFilesInItsFolder) {
    const auto map = parse_safetensors_index(
        R"({"metadata": {"total_size": 8}, "weight_map": {"a": "model-00001-of-00002.safetensors",
            "b": "model-00002-of-00002.safetensors"}})",
        "idx.json");
    ASSERT_EQ(map.size(), 2u);
    EXPECT_EQ(map.at("a"), "model-00001-of-00002.safetensors");
    EXPECT_EQ(map.at("b"), "model-00002-of-00002.safetensors");
    EXPECT_TRUE(parse_safetensors_index(R"({"weight_map": {}})", "idx.json").empty());
    auto refused = [](const std::string& text, const std::string& problem) {
        try {
            parse_safetensors_index(text, "dir/idx.json");
            ADD_FAILURE() << "accepted: " << text;
        } catch (const SafetensorsError& e) {
            const std::string msg = e.what();
            EXPECT_NE(msg.find("'dir/idx.json'"), std::string::npos) << msg;
            EXPECT_NE(msg.find(problem), std::string::npos) << "expected '" << problem << "' in: " << msg;
        }
    };
    refused(R"({"weight_map": )", "is not valid JSON");
    refused("[1, 2]", "has no weight_map object");
    refused("7", "has no weight_map object");
    refused(R"({"weight_map": ["a.safetensors"]})", "has no weight_map object");
    refused(R"({"weight_map": {"a": 3}})", "weight_map entry 'a' is not a file name");
    for (const char* bad : {"", ".", "..", ".safetensors", "../x.safetensors", "sub/x.safetensors",
                            "x\\\\y.safetensors" /* x\\y in JSON: x\y */, "model.bin", "model.safetensors.json"})
        refused(std::string(R"({"weight_map": {"a": ")") + bad + R"("}})",
                "not a .safetensors file in the index's folder");
    refused(std::string("{\"weight_map\": {\"a\": \"x\\u0000.safetensors\"}}"), "not a .safetensors file");
}

TEST(Safetensors, WriterRefusesInconsistentEntries) {
    float x[3] = {1, 2, 3};
    SafetensorsWriter w;
    EXPECT_THROW(w.add("a", DType::F32, {2}, x, 12), SafetensorsError);  // 3 floats for shape [2]
    EXPECT_THROW(w.add("a", DType::F32, {-1}, x, 4), SafetensorsError);  // negative dim
    EXPECT_THROW(w.add("__metadata__", DType::F32, {3}, x, 12), SafetensorsError);
    w.add("a", DType::F32, {3}, x, 12);
    EXPECT_THROW(w.add("a", DType::F32, {3}, x, 12), SafetensorsError);  // duplicate
}

TEST(Safetensors, DtypeNamesAndSizes) {
    EXPECT_EQ(dtype_size(DType::BF16), 2u);
    EXPECT_EQ(dtype_size(DType::I64), 8u);
    EXPECT_EQ(dtype_size(DType::BOOL), 1u);
    EXPECT_EQ(dtype_name(DType::U16), "U16");
    EXPECT_EQ(dtype_from_name("BF16"), DType::BF16);
    EXPECT_THROW(dtype_from_name("f32"), SafetensorsError);  // names are case-sensitive
}

TEST(HalfFloat, HandValues) {
    struct Case {
        uint16_t h;
        float f;
    };
    const float inf = std::numeric_limits<float>::infinity();
    std::vector<Case> exact = {
        {0x3c00, 1.0f},     {0xc000, -2.0f},           {0x3800, 0.5f}, {0x7bff, 65504.0f}, {0x0400, 0x1p-14f},
        {0x0001, 0x1p-24f}, {0x03ff, 1023 * 0x1p-24f}, {0x7c00, inf},  {0xfc00, -inf},     {0x0000, 0.0f},
        {0x4248, 3.140625f}};
    for (auto& c : exact) {
        EXPECT_EQ(f16_to_f32(c.h), c.f) << std::hex << c.h;
        EXPECT_EQ(f32_to_f16(c.f), c.h) << c.f;
    }
    EXPECT_EQ(f32_to_f16(-0.0f), 0x8000);
    EXPECT_TRUE(std::signbit(f16_to_f32(0x8000)));
    // Rounding to nearest, ties to even.
    EXPECT_EQ(f32_to_f16(1.0f + 0x1p-11f), 0x3c00);      // tie, even stays
    EXPECT_EQ(f32_to_f16(1.0f + 3 * 0x1p-11f), 0x3c02);  // tie, odd rounds up
    EXPECT_EQ(f32_to_f16(1.0f + 0x1p-11f + 0x1p-20f), 0x3c01);
    EXPECT_EQ(f32_to_f16(0.1f), 0x2e66);
    EXPECT_EQ(f32_to_f16(1.0f / 3.0f), 0x3555);
    EXPECT_EQ(f32_to_f16(65519.0f), 0x7bff);
    EXPECT_EQ(f32_to_f16(65520.0f), 0x7c00);  // tie to even = inf
    EXPECT_EQ(f32_to_f16(0x1p-25f), 0x0000);  // tie with zero
    EXPECT_EQ(f32_to_f16(0x1p-25f * 1.0001f), 0x0001);
    EXPECT_EQ(f32_to_f16(3 * 0x1p-25f), 0x0002);         // subnormal tie, odd rounds up
    EXPECT_EQ(f32_to_f16(0x1p-14f - 0x1p-26f), 0x0400);  // rounds up into the normals
    EXPECT_TRUE(std::isnan(f16_to_f32(f32_to_f16(std::nanf("")))));
    EXPECT_TRUE(std::isnan(f16_to_f32(0x7e00)));
}

TEST(HalfFloat, AllHalvesAgainstFormulaAndRoundTrip) {
    for (uint32_t h = 0; h < 65536; ++h) {
        uint32_t e = (h >> 10) & 0x1f, m = h & 0x3ff;
        double sign = (h & 0x8000) ? -1.0 : 1.0;
        if (e == 0x1f) {
            EXPECT_EQ(std::isnan(f16_to_f32(uint16_t(h))), m != 0);
            continue;
        }
        double ref = e == 0 ? sign * std::ldexp(double(m), -24) : sign * std::ldexp(1.0 + m / 1024.0, int(e) - 15);
        ASSERT_EQ(double(f16_to_f32(uint16_t(h))), ref) << std::hex << h;
        ASSERT_EQ(f32_to_f16(float(ref)), h) << std::hex << h;
    }
}

TEST(HalfFloat, RandomFloatsMatchC10) {
    // c10's conversions are an independent implementation of the same IEEE rounding.
    std::mt19937 rng(7);
    std::uniform_int_distribution<uint32_t> bits;
    for (int i = 0; i < 200000; ++i) {
        uint32_t b = bits(rng);
        float f = bits_f(b);
        if (std::isnan(f)) continue;
        ASSERT_EQ(f32_to_f16(f), c10::Half(f).x) << std::hex << b;
        ASSERT_EQ(f32_to_bf16(f), c10::BFloat16(f).x) << std::hex << b;
    }
}

TEST(BFloat16, HandValues) {
    EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
    EXPECT_EQ(f32_to_bf16(-2.0f), 0xc000);
    EXPECT_EQ(f32_to_bf16(3.140625f), 0x4049);
    EXPECT_EQ(bf16_to_f32(0x4049), 3.140625f);
    EXPECT_EQ(bf16_to_f32(0xc000), -2.0f);
    EXPECT_EQ(f32_to_bf16(bits_f(0x3f808000)), 0x3f80);  // tie, even stays
    EXPECT_EQ(f32_to_bf16(bits_f(0x3f818000)), 0x3f82);  // tie, odd rounds up
    EXPECT_EQ(f32_to_bf16(bits_f(0x3f808001)), 0x3f81);
    EXPECT_EQ(f32_to_bf16(bits_f(0x7f7fffff)), 0x7f80);  // max float rounds to inf
    EXPECT_EQ(f32_to_bf16(std::numeric_limits<float>::infinity()), 0x7f80);
    EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(std::nanf("")))));
    for (uint32_t b = 0; b < 65536; ++b) {
        float f = bf16_to_f32(uint16_t(b));
        ASSERT_EQ(f_bits(f), b << 16);
        if (!std::isnan(f)) ASSERT_EQ(f32_to_bf16(f), b);
    }
}
