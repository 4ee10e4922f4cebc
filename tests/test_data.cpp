// Tokenizer (against the LLaMA-2 ids published with the shared data), corpus
// ingestion and its errors, the deterministic split, and prepared shards read
// back through TokenDataset against the tokenizer's own encoding; compressed
// corpora against the xz/gzip/zstd command-line tools; parallel encoding
// against one thread.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "core/base/FileUtil.h"
#include "core/data/Corpus.h"
#include "core/data/DecompressingReader.h"
#include "core/data/Prepare.h"
#include "core/data/TokenDataset.h"
#include "core/data/Tokenizer.h"
#include "tests/TestUtil.h"

using namespace bimamba;
using namespace bimamba::base;
using namespace bimamba::data;
namespace fs = std::filesystem;
using bimamba::test::error_of;

namespace {

const std::string kData = BIMAMBA_SHARED_DATA;

struct TempDir {
    std::string path;
    TempDir() {
        path = (fs::temp_directory_path() /
                ("bimamba_test_data_" + std::to_string(getpid()) + "_" + std::to_string(counter()++)))
                   .string();
        bimamba::base::remove_tree(path);
        fs::create_directories(path);
    }
    ~TempDir() { bimamba::base::remove_tree(path); }
    static int& counter() {
        static int c = 0;
        return c;
    }
    std::string file(const std::string& name, const std::string& content) const {
        std::string p = path + "/" + name;
        fs::create_directories(fs::path(p).parent_path());
        std::ofstream(p, std::ios::binary) << content;
        return p;
    }
};

// stdout of a shell command (the independent reference for decompression).
std::string shell_output(const std::string& cmd) {
    std::string out;
    FILE* p = popen(cmd.c_str(), "r");
    if (!p) return out;
    char buf[1 << 16];
    while (size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
    EXPECT_EQ(pclose(p), 0) << cmd;
    return out;
}

}  // namespace

TEST(Tokenizer, Llama2KnownIds) {
    auto tok = Tokenizer::load(kData + "/llama2-tokenizer/tokenizer.model");
    EXPECT_EQ(tok->vocab_size(), 32000);
    EXPECT_EQ(tok->bos_id(), 1);
    EXPECT_EQ(tok->eos_id(), 2);
    const std::string text = "Who is the world's most famous painter?\nAnswer:";
    const std::vector<int> expect = {11644, 338, 278, 3186, 29915, 29879, 1556, 13834, 23187, 29973, 13, 22550, 29901};
    EXPECT_EQ(tok->encode(text), expect);
    EXPECT_EQ(tok->decode(expect), text);
    EXPECT_EQ(tok->piece(13), "<0x0A>");
    // Round trip through the serialized bytes.
    auto tok2 = Tokenizer::from_serialized(tok->serialized());
    EXPECT_EQ(tok2->encode(text), expect);
    EXPECT_THROW(tok->piece(32000), std::out_of_range);
    EXPECT_NE(error_of([] { Tokenizer::load("/nonexistent/tokenizer.model"); }).find("/nonexistent/tokenizer.model"),
              std::string::npos);
    EXPECT_THROW(Tokenizer::from_serialized("not a model"), std::runtime_error);
}

TEST(Tokenizer, TrainsOnACorpusAndRoundTrips) {
    std::string text = read_file(kData + "/tinyshakespeare/input.txt").substr(0, 60000);
    TokenizerTrainOptions o;
    o.vocab_size = 400;
    auto tok = Tokenizer::from_serialized(train_tokenizer({text}, o));
    EXPECT_EQ(tok->vocab_size(), 400);
    EXPECT_EQ(tok->bos_id(), 1);
    EXPECT_EQ(tok->eos_id(), 2);
    const std::string sample = "First Citizen:\nBefore we proceed any further, hear me speak.\n\tZ\u00e9! 123";
    auto ids = tok->encode(sample);
    EXPECT_EQ(tok->decode(ids), sample);   // byte fallback: nothing is lost, newlines and tabs included
    EXPECT_LT(ids.size(), sample.size());  // it learned merges
    o.model_type = "unigram";
    auto uni = Tokenizer::from_serialized(train_tokenizer({text}, o));
    EXPECT_EQ(uni->decode(uni->encode(sample)), sample);
    o.model_type = "wordpiece";
    EXPECT_NE(error_of([&] { train_tokenizer({text}, o); }).find("wordpiece"), std::string::npos);
}

TEST(Corpus, DocumentUnits) {
    TempDir d;
    auto f = d.file("a.txt", "one\ntwo\n\nthree\n%\nfour\n");
    CorpusOptions o;
    o.paths = {f};
    o.unit = DocUnit::File;
    auto docs = read_corpus(o);
    ASSERT_EQ(docs.size(), 1u);
    EXPECT_EQ(docs[0].text, "one\ntwo\n\nthree\n%\nfour");
    o.unit = DocUnit::Line;
    docs = read_corpus(o);
    ASSERT_EQ(docs.size(), 5u);
    EXPECT_EQ(docs[2].text, "three");
    EXPECT_EQ(docs[2].source, f + ":4");
    o.unit = DocUnit::Paragraph;
    docs = read_corpus(o);
    ASSERT_EQ(docs.size(), 2u);
    EXPECT_EQ(docs[0].text, "one\ntwo");
    EXPECT_EQ(docs[1].text, "three\n%\nfour");
    o.unit = DocUnit::Percent;
    docs = read_corpus(o);
    ASSERT_EQ(docs.size(), 2u);
    EXPECT_EQ(docs[0].text, "one\ntwo\n\nthree");
    EXPECT_EQ(docs[1].text, "four");
}

TEST(Corpus, FortuneFolderSkipsIndexesAndSymlinks) {
    TempDir d;
    d.file("f/jokes", "A joke.\n%\nAnother\njoke.\n%\n");
    d.file("f/jokes.dat", "\x02\x00binary");
    d.file("f/jokes.u8", "A joke.\n%\n");
    d.file("f/sub/more", "Deep.\n%\n");
    fs::create_symlink(d.path + "/f/jokes", d.path + "/f/link");
    auto o = fortunes_corpus(d.path + "/f");
    auto files = list_corpus_files(o);
    ASSERT_EQ(files.size(), 2u);
    EXPECT_EQ(files[0], d.path + "/f/jokes");
    EXPECT_EQ(files[1], d.path + "/f/sub/more");
    auto docs = read_corpus(o);
    ASSERT_EQ(docs.size(), 3u);
    EXPECT_EQ(docs[1].text, "Another\njoke.");
}

TEST(Corpus, JsonlRecordsAndErrors) {
    TempDir d;
    auto good = d.file("ok.jsonl", "{\"text\": \"hello\"}\n\n{\"text\": \"world\", \"id\": 2}\n");
    CorpusOptions o;
    o.paths = {good};
    auto docs = read_corpus(o);
    ASSERT_EQ(docs.size(), 2u);
    EXPECT_EQ(docs[1].text, "world");
    EXPECT_EQ(docs[1].source, good + ":3");

    auto bad = d.file("bad.jsonl", "{\"text\": \"a\"}\n{\"text\": \"b\"}\n{\"text\": oops}\n");
    o.paths = {bad};
    auto e = error_of([&] { read_corpus(o); });
    EXPECT_NE(e.find("line 3"), std::string::npos) << e;
    EXPECT_NE(e.find("bad.jsonl"), std::string::npos) << e;

    auto nofield = d.file("nf.jsonl", "{\"body\": \"a\"}\n");
    o.paths = {nofield};
    e = error_of([&] { read_corpus(o); });
    EXPECT_NE(e.find("line 1"), std::string::npos) << e;
    EXPECT_NE(e.find("\"text\""), std::string::npos) << e;
    o.jsonl_field = "body";
    EXPECT_EQ(read_corpus(o)[0].text, "a");

    auto notstr = d.file("ns.jsonl", "{\"text\": 5}\n");
    o.paths = {notstr};
    o.jsonl_field = "text";
    EXPECT_NE(error_of([&] { read_corpus(o); }).find("not a string"), std::string::npos);
}

TEST(Corpus, EmptyAndMissingInputs) {
    TempDir d;
    CorpusOptions o;
    o.paths = {d.file("empty.txt", "\n  \n")};
    auto e = error_of([&] { read_corpus(o); });
    EXPECT_NE(e.find("empty"), std::string::npos) << e;
    o.paths = {d.path + "/nope.txt"};
    e = error_of([&] { read_corpus(o); });
    EXPECT_NE(e.find("nope.txt"), std::string::npos) << e;
    EXPECT_NE(e.find("does not exist"), std::string::npos) << e;
    fs::create_directories(d.path + "/emptydir");
    o.paths = {d.path + "/emptydir"};
    EXPECT_NE(error_of([&] { read_corpus(o); }).find("no files"), std::string::npos);
    o.paths = {};
    EXPECT_NE(error_of([&] { read_corpus(o); }).find("no input"), std::string::npos);
}

TEST(Corpus, SplitIsDeterministicAndSized) {
    std::vector<Document> docs;
    for (int i = 0; i < 200; ++i) docs.push_back({"doc " + std::to_string(i), ""});
    auto a = split_validation(docs, 0.1, 7), b = split_validation(docs, 0.1, 7), c = split_validation(docs, 0.1, 8);
    EXPECT_EQ(a, b);
    EXPECT_NE(a, c);
    EXPECT_EQ(std::count(a.begin(), a.end(), true), 20);
    EXPECT_EQ(std::count(c.begin(), c.end(), true), 20);
    // At least one validation document, never all.
    std::vector<Document> two = {{"x", ""}, {"y", ""}};
    auto s = split_validation(two, 0.01, 0);
    EXPECT_EQ(std::count(s.begin(), s.end(), true), 1);
    EXPECT_THROW(split_validation(docs, 1.0, 0), std::invalid_argument);
}

// meta.json written by someone else (issue #17): shard names must be files in
// the corpus folder, and regular files: a FIFO blocked open() for ever, and
// "../" read another folder's files.
TEST(TokenDataset, ShardsOutsideTheFolderOrNotRegularFilesAreRefused) {
    TempDir d;
    fs::create_directories(d.path + "/c");
    bimamba::test::write_text(d.path + "/outside.bin", std::string(8, '\1'));
    ASSERT_EQ(mkfifo((d.path + "/c/fifo.bin").c_str(), 0600), 0);
    auto meta = [&](const std::string& shard) {
        bimamba::test::write_text(d.path + "/c/meta.json",
                                  R"({"format": "bimamba-tokens-v1", "dtype": "uint16", "vocab_size": 300,
                                      "splits": {"train": {"shards": [)" +
                                      shard + "]}}}");
    };
    for (const std::string& bad : {R"("../outside.bin")", R"("")", R"("..")", R"("/etc/hostname")"}) {
        meta(bad);
        EXPECT_NE(error_of([&] { TokenDataset::open(d.path + "/c", "train"); }).find("not a file in the corpus folder"),
                  std::string::npos)
            << bad;
    }
    meta(R"("fifo.bin")");
    EXPECT_NE(error_of([&] { TokenDataset::open(d.path + "/c", "train"); }).find("is not a regular file"),
              std::string::npos);
    // The tokenizer a corpus names is read through the same refusal (it blocked on a FIFO before).
    EXPECT_NE(error_of([&] { Tokenizer::load(d.path + "/c/fifo.bin"); }).find("is not a regular file"),
              std::string::npos);
    fs::create_directories(d.path + "/c/sub.bin");
    meta(R"("sub.bin")");
    EXPECT_NE(error_of([&] { TokenDataset::open(d.path + "/c", "train"); }).find("is not a regular file"),
              std::string::npos);
    bimamba::test::write_text(d.path + "/c/train_000.bin", std::string(8, '\1'));
    meta(R"("train_000.bin")");
    EXPECT_EQ(TokenDataset::open(d.path + "/c", "train")->num_tokens(), 4u);
}

// meta.json integers outside int (fuzz_token_shards, 2026-11-29: eos_id
// 6.66e70 was converted to int, undefined behaviour): refused by name. The
// fuzzer's input is tests/fuzz/corpus/fuzz_token_shards/crash-eos-id-float-outside-int.
TEST(TokenDataset, MetaIntegersOutOfRangeAreRefused) {
    TempDir d;
    bimamba::test::write_text(d.path + "/train_000.bin", std::string(8, '\1'));
    auto open_with = [&](const std::string& fields) {
        bimamba::test::write_text(d.path + "/meta.json",
                                  R"({"format": "bimamba-tokens-v1", "dtype": "uint16", )" + fields +
                                      R"(, "splits": {"train": {"shards": ["train_000.bin"]}}})");
        return error_of([&] { TokenDataset::open(d.path, "train"); });
    };
    const std::string seed = read_file(std::string(BIMAMBA_SOURCE_DIR) +
                                       "/tests/fuzz/corpus/fuzz_token_shards/crash-eos-id-float-outside-int");
    const size_t nul = seed.find('\0');
    ASSERT_NE(nul, std::string::npos);
    bimamba::test::write_text(d.path + "/meta.json", seed.substr(0, nul));
    EXPECT_NE(error_of([&] { TokenDataset::open(d.path, "train"); }).find("eos_id must be an integer from 0 to 511"),
              std::string::npos);
    EXPECT_NE(open_with(R"("vocab_size": 512, "eos_id": 2.5)").find("eos_id must be an integer"), std::string::npos);
    EXPECT_NE(open_with(R"("vocab_size": 512, "eos_id": 512)").find("eos_id must be an integer from 0 to 511"),
              std::string::npos);
    EXPECT_NE(open_with(R"("vocab_size": 4294967296, "eos_id": 2)").find("vocab_size must be an integer"),
              std::string::npos);
    EXPECT_NE(open_with(R"("vocab_size": 18446744073709551615)").find("vocab_size must be an integer"),
              std::string::npos);
    EXPECT_NE(open_with(R"("vocab_size": 0)").find("vocab_size must be an integer from 1"), std::string::npos);
    EXPECT_NE(open_with(R"("eos_id": 2)").find("meta.json lacks vocab_size"), std::string::npos);
    EXPECT_EQ(open_with(R"("vocab_size": 512, "eos_id": 511)"), "(no error)");
    // The split's counts: non-negative integers or an error naming the key
    // (a float out of range was converted, undefined behaviour, before).
    auto open_split = [&](const std::string& fields) {
        bimamba::test::write_text(d.path + "/meta.json",
                                  R"({"format": "bimamba-tokens-v1", "dtype": "uint16", "vocab_size": 512,
                                      "splits": {"train": {"shards": ["train_000.bin"], )" +
                                      fields + "}}}");
        return error_of([&] { TokenDataset::open(d.path, "train"); });
    };
    const std::string seed2 = read_file(std::string(BIMAMBA_SOURCE_DIR) +
                                        "/tests/fuzz/corpus/fuzz_token_shards/crash-documents-float-outside-uint64");
    bimamba::test::write_text(d.path + "/meta.json", seed2.substr(0, seed2.find('\0')));
    EXPECT_NE(error_of([&] { TokenDataset::open(d.path, "train"); }).find("documents must be a non-negative integer"),
              std::string::npos);
    EXPECT_NE(open_split(R"("documents": -1.5)").find("documents must be a non-negative integer, got -1.5"),
              std::string::npos);
    EXPECT_NE(open_split(R"("documents": -3)").find("documents must be a non-negative integer"), std::string::npos);
    EXPECT_NE(open_split(R"("tokens": 1e30)").find("tokens must be a non-negative integer"), std::string::npos);
    EXPECT_NE(open_split(R"("tokens": "4")").find("tokens must be a non-negative integer"), std::string::npos);
    EXPECT_NE(open_split(R"("tokens": 5)").find("hold 4 tokens but meta.json says 5"), std::string::npos);
    EXPECT_EQ(open_split(R"("documents": 18446744073709551615, "tokens": 4)"), "(no error)");
    EXPECT_EQ(TokenDataset::open(d.path, "train")->num_documents(), 18446744073709551615ull);
}

TEST(Prepare, ShardsHoldTheTokenizersEncodingInOrder) {
    TempDir d;
    // 40 short plays' worth of lines from Tiny Shakespeare, one document per paragraph.
    std::string text = read_file(kData + "/tinyshakespeare/input.txt").substr(0, 40000);
    auto corpus = d.file("shakes.txt", text);
    for (std::string dtype : {"uint16", "uint32"}) {
        PrepareOptions p;
        p.corpus.paths = {corpus};
        p.corpus.unit = DocUnit::Paragraph;
        p.out_dir = d.path + "/prep_" + dtype;
        p.tokenizer.vocab_size = 320;
        p.val_fraction = 0.1;
        p.seed = 3;
        p.dtype = dtype;
        p.shard_tokens = 2000;  // several shards
        int calls = 0;
        auto sum = prepare_corpus(p, [&](const PrepareProgress&) { ++calls; });
        EXPECT_GT(calls, 2);

        auto docs = read_corpus(p.corpus);
        auto is_val = split_validation(docs, 0.1, 3);
        auto tok = Tokenizer::load(p.out_dir + "/tokenizer.model");
        for (int split = 0; split < 2; ++split) {
            std::vector<int32_t> expect;
            uint64_t ndocs = 0;
            for (size_t i = 0; i < docs.size(); ++i) {
                if (is_val[i] != (split == 1)) continue;
                auto ids = tok->encode(docs[i].text);
                expect.insert(expect.end(), ids.begin(), ids.end());
                expect.push_back(tok->eos_id());
                ++ndocs;
            }
            auto ds = TokenDataset::open(p.out_dir, split == 0 ? "train" : "val");
            ASSERT_EQ(ds->num_tokens(), expect.size());
            EXPECT_EQ(ds->num_documents(), ndocs);
            EXPECT_EQ(sum.tokens[split], expect.size());
            EXPECT_EQ(ds->vocab_size(), 320);
            EXPECT_EQ(ds->eos_id(), 2);
            std::vector<int32_t> got(expect.size());
            ds->read(0, got.size(), got.data());
            EXPECT_EQ(got, expect) << dtype << " split " << split;
            // A read across a shard boundary, from the middle.
            if (expect.size() > 2500) {
                std::vector<int32_t> part(1000);
                ds->read(1500, 1000, part.data());
                EXPECT_TRUE(std::equal(part.begin(), part.end(), expect.begin() + 1500));
            }
            EXPECT_THROW(ds->read(expect.size() - 2, 5, got.data()), std::out_of_range);
        }
        // The .idx of the first train shard starts at 0 and its offsets point just past an eos.
        std::string idx = read_file(p.out_dir + "/train_000.idx");
        ASSERT_GE(idx.size(), 16u);
        uint64_t first, second;
        std::memcpy(&first, idx.data(), 8);
        std::memcpy(&second, idx.data() + 8, 8);
        EXPECT_EQ(first, 0u);
        auto ds = TokenDataset::open(p.out_dir, "train");
        int32_t prev;
        ds->read(second - 1, 1, &prev);
        EXPECT_EQ(prev, 2);
        EXPECT_GE(fs::file_size(p.out_dir + "/train_000.bin"), 2000u * (dtype == "uint16" ? 2 : 4));
        EXPECT_TRUE(fs::exists(p.out_dir + "/train_001.bin"));
    }
}

TEST(Prepare, ExistingTokenizerAndDatasetErrors) {
    TempDir d;
    auto corpus =
        d.file("c.jsonl", "{\"text\": \"Who is the world's most famous painter?\"}\n{\"text\": \"Answer:\"}\n");
    PrepareOptions p;
    p.corpus.paths = {corpus};
    p.out_dir = d.path + "/prep";
    p.tokenizer_path = kData + "/llama2-tokenizer/tokenizer.model";
    p.val_fraction = 0.5;
    auto s = prepare_corpus(p);
    EXPECT_EQ(s.vocab_size, 32000);
    EXPECT_EQ(s.dtype, "uint16");
    EXPECT_EQ(s.documents[0] + s.documents[1], 2u);

    EXPECT_NE(error_of([&] { TokenDataset::open(d.path, "train"); }).find("meta.json"), std::string::npos);
    EXPECT_NE(error_of([&] { TokenDataset::open(p.out_dir, "test"); }).find("'test'"), std::string::npos);
    // A torn shard: odd number of bytes for uint16.
    {
        std::ofstream f(p.out_dir + "/train_000.bin", std::ios::binary | std::ios::app);
        f << 'x';
    }
    auto e = error_of([&] { TokenDataset::open(p.out_dir, "train"); });
    EXPECT_NE(e.find("not a multiple"), std::string::npos) << e;
}

// Text with every byte value, CRLF and no final newline, so nothing but a
// byte-exact decoder passes.
std::string awkward_text() {
    std::string t = read_file(kData + "/tinyshakespeare/input.txt").substr(0, 300000);
    for (int b = 0; b < 256; ++b) t += static_cast<char>(b);
    t += "\r\nlast line without newline";
    return t;
}

TEST(Decompress, XzGzipZstdGiveTheOriginalBytes) {
    TempDir d;
    const std::string text = awkward_text();
    const std::string plain = d.file("t.txt", text);
    // Compressed by the command-line tools; a second stream/member/frame appended to each.
    const std::string second = "second stream\n";
    d.file("s.txt", second);
    ASSERT_EQ(std::system(("cd " + d.path +
                           " && xz -k t.txt && xz -k s.txt && cat t.txt.xz s.txt.xz > multi.xz && "
                           "gzip -k t.txt && gzip -k s.txt && cat t.txt.gz s.txt.gz > multi.gz && "
                           "zstd -q t.txt && zstd -q s.txt && cat t.txt.zst s.txt.zst > multi.zst")
                              .c_str()),
              0);
    EXPECT_EQ(read_decompressed(plain), text);
    for (std::string ext : {"xz", "gz", "zst"}) {
        const std::string f = d.path + "/t.txt." + ext;
        EXPECT_EQ(read_decompressed(f), text) << ext;
        EXPECT_EQ(read_decompressed(d.path + "/multi." + ext), text + second) << ext;
        DecompressingReader r(f);
        EXPECT_EQ(r.compression(), compression_of_name(f));
        EXPECT_NE(r.compression(), Compression::None);
        // Line by line, as std::getline over the original.
        std::istringstream ref(text);
        std::string want, got;
        size_t lines = 0;
        while (std::getline(ref, want)) {
            ASSERT_TRUE(r.getline(got)) << ext << " line " << lines;
            ASSERT_EQ(got, want) << ext << " line " << lines;
            ++lines;
        }
        EXPECT_FALSE(r.getline(got));
        EXPECT_GT(lines, 1000u);
        EXPECT_EQ(r.compressed_bytes_read(), r.file_size());
    }
}

TEST(Decompress, WikipediaPartEqualsXzDc) {
    const std::string f = kData + "/corpora/wikipedia-en-2014/valid.txt.xz";
    const std::string ours = read_decompressed(f);
    EXPECT_GT(ours.size(), 5'000'000u);
    EXPECT_TRUE(ours == shell_output("xz -dc '" + f + "'"));
}

TEST(Decompress, CorruptTruncatedAndMisnamedFilesAreNamed) {
    TempDir d;
    const std::string text = awkward_text();
    d.file("t.txt", text);
    ASSERT_EQ(std::system(("cd " + d.path + " && xz -k t.txt && gzip -k t.txt && zstd -q t.txt").c_str()), 0);
    for (std::string ext : {"xz", "gz", "zst"}) {
        const std::string good = read_file(d.path + "/t.txt." + ext);
        // One flipped byte in the middle of the compressed data.
        std::string bad = good;
        bad[bad.size() / 2] ^= 0x55;
        const std::string corrupt = d.file("corrupt.txt." + ext, bad);
        std::string e = error_of([&] { read_decompressed(corrupt); });
        EXPECT_NE(e.find("'" + corrupt + "'"), std::string::npos) << e;
        EXPECT_NE(e.find("corrupt"), std::string::npos) << e;
        EXPECT_NE(e.find("near compressed byte"), std::string::npos) << e;
        // Cut in the middle.
        const std::string cut = d.file("cut.txt." + ext, good.substr(0, good.size() / 2));
        e = error_of([&] { read_decompressed(cut); });
        EXPECT_NE(e.find("'" + cut + "'"), std::string::npos) << e;
        EXPECT_NE(e.find("truncated"), std::string::npos) << e;
        // Through the corpus reader, by line: the same reason, with the corpus context.
        CorpusOptions o;
        o.paths = {cut};
        o.unit = DocUnit::Line;
        e = error_of([&] { read_corpus(o); });
        EXPECT_EQ(e.rfind("corpus: '" + cut + "'", 0), 0u) << e;
        EXPECT_NE(e.find("truncated"), std::string::npos) << e;
    }
    const std::string misnamed = d.file("plain.txt.gz", "just text\n");
    const std::string e = error_of([&] { read_decompressed(misnamed); });
    EXPECT_NE(e.find("does not hold gzip data"), std::string::npos) << e;
    EXPECT_NE(error_of([&] { read_decompressed(d.path + "/absent.xz"); }).find("cannot open"), std::string::npos);
}

// A decompression bomb (40 MB of zeros in a 40 kB gzip, one "line") and a
// corpus larger than its budget stop with the file named, before the memory
// is taken; the budget is shared by a corpus's files. The default budget is
// half of the memory available.
TEST(Corpus, DecompressionBombsAndOversizedCorporaAreRefusedByName) {
    TempDir d;
    ASSERT_EQ(std::system(("cd " + d.path + " && head -c 40000000 /dev/zero | gzip > bomb.txt.gz").c_str()), 0);
    const std::string bomb = d.path + "/bomb.txt.gz";
    ASSERT_LT(std::filesystem::file_size(bomb), 200000u);
    for (DocUnit unit : {DocUnit::File, DocUnit::Line}) {
        CorpusOptions o;
        o.paths = {bomb};
        o.unit = unit;
        o.max_bytes = 8000000;
        const std::string e = error_of([&] { read_corpus(o); });
        EXPECT_EQ(e.rfind("corpus: '" + bomb + "' decompresses to more than 8.0 MB", 0), 0u) << e;
        EXPECT_NE(e.find("decompression bomb"), std::string::npos) << e;
    }
    EXPECT_NE(error_of([&] { read_decompressed(bomb, 1000000); }).find("more than 1.0 MB"), std::string::npos);
    EXPECT_EQ(read_decompressed(bomb, 40000000).size(), 40000000u);  // exactly at the limit: read

    // Two plain files of 5 MB: each fits a budget of 8 MB, both do not; the second is named.
    const std::string a = d.file("a.txt", std::string(5000000, 'a')), b = d.file("b.txt", std::string(5000000, 'b'));
    CorpusOptions two;
    two.paths = {a, b};
    two.max_bytes = 8000000;
    const std::string e = error_of([&] { read_corpus(two); });
    EXPECT_EQ(e.rfind("corpus: '" + b + "' is larger than", 0), 0u) << e;
    two.max_bytes = 10000000;
    EXPECT_EQ(read_corpus(two).size(), 2u);

    const uint64_t budget = memory_budget_bytes();
    EXPECT_GT(budget, 0u);
    EXPECT_LT(budget, (uint64_t)sysconf(_SC_PHYS_PAGES) * (uint64_t)sysconf(_SC_PAGESIZE));
}

TEST(Corpus, CompressedFilesGiveTheSameDocuments) {
    TempDir d;
    d.file("w.txt", read_file(kData + "/tinyshakespeare/input.txt").substr(0, 50000));
    d.file("r.jsonl", "{\"text\": \"one\"}\n\n{\"text\": \"two\\nlines\"}\n");
    ASSERT_EQ(std::system(("cd " + d.path + " && xz -k w.txt && zstd -q r.jsonl && gzip -k w.txt").c_str()), 0);
    auto texts = [](const std::vector<Document>& docs) {
        std::vector<std::string> t;
        for (auto& doc : docs) t.push_back(doc.text);
        return t;
    };
    for (DocUnit unit : {DocUnit::File, DocUnit::Line, DocUnit::Paragraph}) {
        CorpusOptions plain, xz, gz;
        plain.paths = {d.path + "/w.txt"};
        xz.paths = {d.path + "/w.txt.xz"};
        gz.paths = {d.path + "/w.txt.gz"};
        plain.unit = xz.unit = gz.unit = unit;
        const auto want = texts(read_corpus(plain));
        EXPECT_EQ(texts(read_corpus(xz)), want) << to_string(unit);
        EXPECT_EQ(texts(read_corpus(gz)), want) << to_string(unit);
    }
    CorpusOptions j;
    j.paths = {d.path + "/r.jsonl.zst"};  // JSONL by its name under the compression suffix
    auto docs = read_corpus(j);
    ASSERT_EQ(docs.size(), 2u);
    EXPECT_EQ(docs[1].text, "two\nlines");
    EXPECT_EQ(docs[1].source, d.path + "/r.jsonl.zst:3");
}

TEST(Prepare, ParallelEncodingEqualsOneThreadByteForByte) {
    TempDir d;
    auto tok = Tokenizer::load(kData + "/llama2-tokenizer/tokenizer.model");
    CorpusOptions o;
    o.paths = {d.file("s.txt", read_file(kData + "/tinyshakespeare/input.txt").substr(0, 200000))};
    o.unit = DocUnit::Line;
    const auto docs = read_corpus(o);
    ASSERT_GT(docs.size(), 3000u);
    // Reference: one document after the other, straight through the tokenizer.
    std::vector<std::vector<int>> want;
    for (auto& doc : docs) want.push_back(tok->encode(doc.text));
    // Tiny chunks and more threads than cores: many chunks, the in-flight window wraps many times.
    for (int threads : {2, 3, 8}) {
        for (size_t chunk : {size_t(1), size_t(500), size_t(1) << 18}) {
            std::vector<std::vector<int>> got;
            encode_in_order(
                *tok, docs, threads,
                [&](size_t i, std::vector<int>& ids) {
                    ASSERT_EQ(i, got.size());
                    got.push_back(ids);
                },
                chunk);
            EXPECT_TRUE(got == want) << threads << " threads, chunks of " << chunk << " bytes";
        }
    }
    // A failing sink stops the workers and its error comes back.
    EXPECT_EQ(error_of([&] {
                  encode_in_order(
                      *tok, docs, 3,
                      [&](size_t i, std::vector<int>&) {
                          if (i == 100) throw std::runtime_error("disk full");
                      },
                      100);
              }),
              "disk full");

    // The prepared folders of 1 and 4 threads, from an xz corpus: identical files.
    ASSERT_EQ(std::system(("xz -k " + o.paths[0]).c_str()), 0);
    std::map<std::string, std::string> files[2];
    int k = 0;
    for (int threads : {1, 4}) {
        PrepareOptions p;
        p.corpus.paths = {o.paths[0] + ".xz"};
        p.corpus.unit = DocUnit::Line;
        p.out_dir = d.path + "/prep" + std::to_string(threads);
        p.tokenizer.vocab_size = 400;
        p.shard_tokens = 20000;
        p.threads = threads;
        auto s = prepare_corpus(p);
        EXPECT_EQ(s.threads, threads);
        EXPECT_GT(s.tokens_per_s, 0);
        for (auto& e : fs::directory_iterator(p.out_dir))
            files[k][e.path().filename().string()] = read_file(e.path().string());
        ++k;
    }
    EXPECT_GT(files[0].size(), 6u);  // meta, tokenizer, several shards
    EXPECT_TRUE(files[0] == files[1]);
}
