// Study files (core/study): parsing, variables and scales, stage state and
// fingerprints, the summary's spread and claims; and the repository's own
// study file parses at both scales.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "core/study/Study.h"
#include "core/study/Summary.h"
#include "tests/TestUtil.h"

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace bimamba::study;

namespace {

const char* kStudy = R"(
[study]
name = "t"
[vars]
data = "/data"
steps = 100
device = "cuda"
[scale.tiny]
steps = 5
[[stage]]
name = "corpus"
run = ["prepare", "${data}/a.txt", "--out", "${ws}/data"]
outputs = ["${ws}/data/meta.json"]
[[stage]]
name = "teacher"
group = "teacher"
[stage.train]
data = "${ws}/data"
steps = "${steps}"
device = "${device}"
note = "steps=${steps} on ${device}"
)";

}  // namespace

TEST(Study, VariablesKeepTheirTypeAndInterpolate) {
    Study s = parse_study(kStudy, "/x/t.toml", "/w");
    ASSERT_EQ(s.stages.size(), 2u);
    EXPECT_EQ(s.stages[0].args, (std::vector<std::string>{"prepare", "/data/a.txt", "--out", "/w/data"}));
    EXPECT_EQ(s.stages[0].outputs, (std::vector<std::string>{"/w/data/meta.json"}));
    const Stage& t = s.stages[1];
    EXPECT_EQ(t.kind, "train");
    EXPECT_EQ(t.run_dir, "/w/runs/teacher");
    EXPECT_TRUE(t.train["steps"].is_number_integer());
    EXPECT_EQ(t.train["steps"].get<int>(), 100);
    EXPECT_EQ(t.train["note"].get<std::string>(), "steps=100 on cuda");
}

TEST(Study, ScaleAndSetOverrideVars) {
    Study s = parse_study(kStudy, "/x/t.toml", "/w", "tiny", {{"device", "cpu"}});
    EXPECT_EQ(s.stages[1].train["steps"].get<int>(), 5);
    EXPECT_EQ(s.stages[1].train["device"].get<std::string>(), "cpu");
    Study s2 = parse_study(kStudy, "/x/t.toml", "/w", "", {{"steps", "7"}});
    EXPECT_TRUE(s2.stages[1].train["steps"].is_number_integer());
    EXPECT_EQ(s2.stages[1].train["steps"].get<int>(), 7);
}

TEST(Study, ErrorsNameTheProblem) {
    auto msg = [](const std::string& text, const std::string& scale = "") {
        try {
            parse_study(text, "/x/t.toml", "/w", scale);
        } catch (const std::invalid_argument& e) {
            return std::string(e.what());
        }
        return std::string("no error");
    };
    EXPECT_NE(msg(kStudy, "huge").find("no [scale.huge] (known: tiny)"), std::string::npos);
    EXPECT_NE(msg("[[stage]]\nname='a'\nrun=['x','${nope}']\n").find("unknown variable ${nope}"), std::string::npos);
    EXPECT_NE(msg("[[stage]]\nname='a'\n").find("exactly one of"), std::string::npos);
    EXPECT_NE(msg("[[stage]]\nname='a'\nrun=['x']\n[[stage]]\nname='a'\nrun=['y']\n").find("appears twice"),
              std::string::npos);
    EXPECT_NE(msg("[[stage]]\nname='a'\nrun=['x']\ncolour='red'\n").find("unknown field 'colour'"), std::string::npos);
    EXPECT_NE(msg("[vars]\na='${b}'\nb='${a}'\n[[stage]]\nname='s'\nrun=['${a}']\n").find("loop"), std::string::npos);
    EXPECT_NE(msg("[[stage]]\nname='a'\nrun=['x'\n").find("line"), std::string::npos);
    EXPECT_NE(msg("[[stage]]\nname='../a'\nrun=['x']\n").find("may not contain"), std::string::npos);
}

TEST(Study, StageStateFollowsRecordsAndFingerprints) {
    const std::string ws = bimamba::test::fresh_dir("study_state");
    Study s = parse_study(kStudy, "/x/t.toml", ws);
    const Stage& corpus = s.stages[0];
    const Stage& teacher = s.stages[1];
    EXPECT_EQ(stage_state(s, corpus), StageState::pending);
    // A training run with a checkpoint but no completion record resumes.
    fs::create_directories(teacher.run_dir + "/checkpoints");
    std::ofstream(teacher.run_dir + "/checkpoints/latest") << "step_00000010\n";
    EXPECT_EQ(stage_state(s, teacher), StageState::partial);
    mark_done(s, corpus, 1.5);
    EXPECT_EQ(stage_state(s, corpus), StageState::done);
    // The same stage with another definition is not silently reused.
    Study changed = parse_study(kStudy, "/x/t.toml", ws, "", {{"data", "/elsewhere"}});
    EXPECT_EQ(stage_state(changed, changed.stages[0]), StageState::changed);
    EXPECT_NE(corpus.fingerprint(), changed.stages[0].fingerprint());
    clear_done(s, corpus);
    EXPECT_EQ(stage_state(s, corpus), StageState::pending);
}

namespace {
json results(const std::vector<std::tuple<std::string, double, double>>& rows) {  // label, ppl, arc acc
    json models = json::array();
    for (auto& [label, ppl, acc] : rows)
        models.push_back(
            {{"label", label},
             {"results",
              {{"wikitext2", {{"kind", "ppl"}, {"ppl", ppl}}},
               {"arc_easy",
                {{"kind", "mc"}, {"acc", acc}, {"acc_stderr", 0.01}, {"acc_norm", acc}, {"headline", "acc"}}}}}});
    return {{"models", models}};
}
}  // namespace

TEST(Study, SummaryMarksClaimsAgainstTheSeedSpread) {
    json ev = results({{"fp", 20.0, 0.60},
                       {"bi", 30.0, 0.50},
                       {"bi2", 31.0, 0.52},
                       {"ce", 30.5, 0.49},
                       {"gptq2", 5000.0, 0.30},
                       {"kl", 28.0, 0.51},
                       {"same", 30.0, 0.50}});
    json settings = {
        {"spread", {"bi", "bi2"}},
        {"claims",
         {{{"text", "bi beats gptq2"}, {"metric", "wikitext2"}, {"better", "bi"}, {"than", {"gptq2"}}},
          {{"text", "bi beats ce"}, {"metric", "wikitext2"}, {"better", "bi"}, {"than", {"ce"}}},
          {{"text", "bi beats kl"}, {"metric", "wikitext2"}, {"better", "bi"}, {"than", {"kl"}}},
          {{"text", "bi above gptq2 in avg"}, {"metric", "avg"}, {"better", "bi"}, {"than", {"gptq2"}}},
          {{"text", "bi beats an equal row"}, {"metric", "wikitext2"}, {"better", "bi"}, {"than", {"same"}}}}}};
    SummaryResult r = build_summary(settings, {{"e.json", ev}});
    // Spread of ppl = |30 - 31| = 1; of the zero-shot average = 2 points.
    EXPECT_DOUBLE_EQ(r.json["spread"]["values"]["wikitext2"].get<double>(), 1.0);
    EXPECT_NEAR(r.json["spread"]["values"]["avg"].get<double>(), 2.0, 1e-9);
    const auto& c = r.json["claims"];
    EXPECT_EQ(c[0]["verdict"], "reproduced");                    // 30 vs 5000
    EXPECT_EQ(c[1]["verdict"], "inconclusive (within spread)");  // 30 vs 30.5, spread 1
    EXPECT_EQ(c[2]["verdict"], "not reproduced");                // 30 vs 28: reversed by 2 > 1
    EXPECT_EQ(c[3]["verdict"], "reproduced");                    // 50 vs 30 points
    EXPECT_EQ(c[4]["verdict"], "inconclusive (within spread)");  // a tie is not a reversal
    EXPECT_FALSE(c[4]["comparisons"][0]["beyond_spread"].get<bool>());
    EXPECT_NE(r.markdown.find("| bi | 30.00 | 50.00 ± 1.00 | 50.00 |"), std::string::npos) << r.markdown;
}

TEST(Study, SummaryChecksClaimsAgainstTheLargerOfSeedAndRerunSpread) {
    // Seeds differ by 1 ppl, the same seed run again by 3: a 2-ppl gap is
    // beyond the seed spread but within the run-to-run spread.
    json ev = results(
        {{"bi", 30.0, 0.50}, {"bi2", 31.0, 0.50}, {"again", 33.0, 0.50}, {"ce", 32.0, 0.50}, {"gptq2", 90.0, 0.30}});
    json claims = {{{"text", "bi beats ce"}, {"metric", "wikitext2"}, {"better", "bi"}, {"than", {"ce"}}},
                   {{"text", "bi beats gptq2"}, {"metric", "wikitext2"}, {"better", "bi"}, {"than", {"gptq2"}}}};
    SummaryResult seeds_only = build_summary({{"spread", {"bi", "bi2"}}, {"claims", claims}}, {{"e.json", ev}});
    EXPECT_EQ(seeds_only.json["claims"][0]["verdict"], "reproduced");
    SummaryResult both =
        build_summary({{"spread", {"bi", "bi2"}}, {"rerun", {"bi", "again"}}, {"claims", claims}}, {{"e.json", ev}});
    EXPECT_DOUBLE_EQ(both.json["spread"]["values"]["wikitext2"].get<double>(), 1.0);
    EXPECT_DOUBLE_EQ(both.json["rerun"]["values"]["wikitext2"].get<double>(), 3.0);
    EXPECT_EQ(both.json["claims"][0]["verdict"], "inconclusive (within spread)");
    EXPECT_EQ(both.json["claims"][1]["verdict"], "reproduced");
    EXPECT_NE(both.markdown.find("| same seed, run again (bi, again) | 3.00 |"), std::string::npos) << both.markdown;
    EXPECT_THROW(build_summary({{"rerun", {"bi", "missing"}}}, {{"e.json", ev}}), std::invalid_argument);
}

TEST(Study, RepositoryStudyFileParsesAtBothScales) {
    const std::string file = std::string(BIMAMBA_SOURCE_DIR) + "/studies/paper-small.toml";
    for (const std::string scale : {"", "tiny"}) {
        Study s = load_study(file, "/tmp/ws", scale, {{"data", BIMAMBA_SHARED_DATA}});
        EXPECT_GE(s.stages.size(), 15u);
        const Stage* t = s.find("teacher");
        ASSERT_NE(t, nullptr);
        EXPECT_EQ(t->train["model"].get<std::string>(), scale.empty() ? "130m" : "tiny");
        // Every path into the shared data exists.
        for (const auto& st : s.stages)
            for (const auto& a : st.args)
                if (a.rfind(BIMAMBA_SHARED_DATA, 0) == 0) EXPECT_TRUE(fs::exists(a)) << st.name << ": " << a;
        ASSERT_NE(s.find("summary"), nullptr);
    }
}

TEST(Study, GroupOfARunComesFromTheWorkspacesStudyRecord) {
    const std::string ws = bimamba::test::fresh_dir("study_group");
    Study s = parse_study(kStudy, "/x/t.toml", ws);
    EXPECT_EQ(study_group_of_run(ws, s.stages[1].run_dir), "");  // no study.json yet
    bimamba::base::write_file_atomic(ws + "/study.json", s.to_json().dump());
    fs::create_directories(s.stages[1].run_dir);
    fs::create_directories(ws + "/runs/other");
    EXPECT_EQ(study_group_of_run(ws, s.stages[1].run_dir), "teacher");
    EXPECT_EQ(study_group_of_run(ws, ws + "/runs/other"), "");  // a run no stage trains
    // The workspace copied elsewhere (a GPU host's results opened here): the
    // recorded paths are stale, the stage is found by runs/<stage>.
    const std::string moved = bimamba::test::fresh_dir("study_group_moved");
    fs::copy(ws, moved, fs::copy_options::recursive | fs::copy_options::overwrite_existing);
    const std::string stage_dir = moved + "/runs/" + fs::path(s.stages[1].run_dir).filename().string();
    EXPECT_EQ(study_group_of_run(moved, stage_dir), "teacher");
    EXPECT_EQ(study_group_of_run(moved, moved + "/runs/other"), "");
    bimamba::base::write_file_atomic(ws + "/study.json", "{not json");
    EXPECT_EQ(study_group_of_run(ws, s.stages[1].run_dir), "");  // damaged record: ungrouped, no throw
}
