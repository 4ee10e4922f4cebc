#pragma once
// Corpus ingestion: plain-text files or folders and JSONL files, cut into
// documents, then split into train/validation deterministically.
// The formats are described in docs/corpus-format.md.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace bimamba::data {

// How a plain-text file is cut into documents.
enum class DocUnit {
    File,       // the whole file is one document
    Line,       // every non-blank line is one document
    Paragraph,  // blocks separated by blank lines
    Percent,    // records separated by lines containing only '%' (fortune files)
};
DocUnit doc_unit_from_string(const std::string& s);  // "file" | "line" | "paragraph" | "percent"; throws
std::string to_string(DocUnit u);

struct CorpusOptions {
    std::vector<std::string> paths;    // files or folders (folders are walked recursively, sorted)
    std::string format = "auto";       // "auto" (by extension: .jsonl/.json -> jsonl), "text", "jsonl"
    DocUnit unit = DocUnit::File;      // for text files
    std::string jsonl_field = "text";  // for JSONL: each line is one record/document
    // Files whose names end with one of these are skipped inside folders.
    std::vector<std::string> exclude_suffixes;
    bool skip_symlinks = true;  // inside folders (fortune folders link duplicates)
    // Decompressed bytes all files together may bring into memory; 0 = half of
    // the memory available (DecompressingReader.h). Past it reading stops with
    // an error naming the file (a decompression bomb, or a corpus too large).
    uint64_t max_bytes = 0;
};

// The default corpus of the quickstart: the Debian package `fortunes`.
CorpusOptions fortunes_corpus(const std::string& dir = "/usr/share/games/fortunes");

struct Document {
    std::string text;
    std::string source;  // "file" or "file:line"
};

// Reads every document (blank ones dropped). Throws naming the problem: a
// missing path, a bad JSONL line (with file and line number), a record without
// the text field, or a corpus that yields no text at all.
std::vector<Document> read_corpus(const CorpusOptions& opt);

// Lists the files read_corpus would read, in order.
std::vector<std::string> list_corpus_files(const CorpusOptions& opt);

// Deterministic split: documents are ranked by a seeded hash of their text
// and index, and the lowest ceil(val_fraction·n) go to validation (at least
// one when val_fraction > 0 and there are two or more documents). Returns
// true for validation documents: a pure function of (seed, documents in order).
std::vector<bool> split_validation(const std::vector<Document>& docs, double val_fraction, uint64_t seed);

uint64_t fnv1a64(const void* data, size_t n, uint64_t h = 1469598103934665603ULL);

}  // namespace bimamba::data
