#pragma once
// The deployment file of the CPU engine (docs/deploy-format.md): one
// safetensors file holding the bit-packed sign matrices (U8), their α and β
// (F32, one per input column), the full-precision parts and the tokenizer.
// Export reads a checkpoint folder with the plain safetensors reader, so
// neither export nor the engine needs LibTorch.
#include <cstdint>
#include <memory>
#include <string>

#include "core/base/Mamba2Config.h"
#include "core/base/ModelSource.h"
#include "core/base/Safetensors.h"

namespace bimamba::engine {

inline constexpr const char* kDeployFormat = base::kDeployFileFormat;
// Version 1: every file without an int8 head; 2: the embedding/head stored as
// int8 rows with a scale per row (`--head q8`). The engine reads both; export
// writes 1 unless the head is int8, so older engines read every file they can.
inline constexpr int kDeployVersion = 2;

// Storage of everything that is not a sign matrix: the embedding/head and the
// unbinarized projections. "f16" is the deployment default (and the fp16
// baseline); "f32" keeps checkpoint values exactly (used for parity tests).
enum class FloatStorage { F16, F32 };
FloatStorage float_storage_from_string(const std::string& s);  // "f16" | "f32", throws otherwise

// Storage of the tied embedding/head: as the float storage, or int8 rows with
// one float scale per row (kernels/cpu/Q8Gemv.h: half the bytes of fp16 for
// the largest matrix a binary token reads). Auto (the default) is q8 for a
// model with binarized projections stored at f16 and the float storage
// otherwise, so the fp16 baseline stays fp16: measured in docs/deploy-format.md,
// with the integer head kernel the 780M binary model decodes 15 % faster on two
// EPYC cores (alternated with llama.cpp) and the head takes half the fp16
// head's time on the Xeon, with no perplexity cost on a trained model.
enum class HeadStorage { Auto, AsFloat, F16, F32, Q8 };
// "auto" | "" | "f16" | "f32" | "q8"; throws otherwise.
HeadStorage head_storage_from_string(const std::string& s);
// What Auto becomes for a model (`binarized`: any projection packed at 1 bit).
HeadStorage resolve_head(HeadStorage h, bool binarized, FloatStorage storage);
const char* head_storage_name(HeadStorage h, FloatStorage storage);  // "q8", "f16" or "f32" once resolved

struct ExportOptions {
    FloatStorage storage = FloatStorage::F16;
    HeadStorage head = HeadStorage::Auto;
    std::string tokenizer_path;  // tokenizer.model to embed; "" = find_tokenizer(checkpoint) (ModelSource.h)
    // Without a tokenizer found, export fails (a file that cannot chat is
    // refused here, not when run) unless this allows a token-ids-only file.
    bool allow_no_tokenizer = false;
};

struct ExportReport {
    base::Mamba2Config config;
    std::string output;
    uint64_t file_bytes = 0;
    uint64_t fp16_bytes = 0;   // the same model with every weight in fp16 (Table 7's baseline)
    uint64_t packed_bits = 0;  // weights stored at 1 bit
    std::string head;          // storage of the embedding/head: "q8", "f16" or "f32"
    bool has_tokenizer = false;
    std::string tokenizer_source;
};

// Checkpoint (a folder, its model.safetensors, or a run directory: its latest
// checkpoint, as resolve_model) -> deployment file with the tokenizer inside.
// Binarized layers (config `binarize`) are packed; the rest keep `storage`.
ExportReport export_checkpoint(const std::string& model, const std::string& output, const ExportOptions& opt);

// A deployment file with random weights of a given shape (speed benchmarks):
// `binary` packs in_proj/out_proj as in_proj+out_proj Bi-Mamba, otherwise
// they are stored with `storage`. Deterministic for a seed.
ExportReport write_random_deploy(base::Mamba2Config cfg, bool binary, FloatStorage storage, const std::string& output,
                                 uint64_t seed = 1, HeadStorage head = HeadStorage::Auto);

// Size of the model with every parameter in fp16 (tied head counted once).
uint64_t fp16_model_bytes(const base::Mamba2Config& cfg);

}  // namespace bimamba::engine
