#include "core/eval/MultipleChoice.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <stdexcept>

namespace bimamba::eval {

namespace {

struct Encoded {
    std::vector<int> ctx, cont;
};

// lm-eval 0.4.13's loglikelihood(): tok_encode = the tokenizer's encoding,
// BOS in front when the tokenizer adds one (bos >= 0); an empty context
// becomes [prefix_token] before the continuation's plain encoding (or the
// continuation's first token when that is the prefix token itself).
Encoded encode_pair(const Encoder& encode, std::string ctx, std::string cont, int bos, int prefix_token) {
    auto tok_encode = [&](const std::string& s) {
        auto ids = encode(s);
        if (bos >= 0) ids.insert(ids.begin(), bos);
        return ids;
    };
    Encoded e;
    if (ctx.empty()) {
        e.cont = encode(cont);
        if (!e.cont.empty() && e.cont[0] == prefix_token) {
            e.ctx = {prefix_token};
            e.cont.erase(e.cont.begin());
        } else {
            e.ctx = {prefix_token};
        }
        return e;
    }
    const size_t keep = py_strip(ctx, false, true).size();  // context.rstrip()
    cont = ctx.substr(keep) + cont;
    ctx.resize(keep);
    auto whole = tok_encode(ctx + cont);
    e.ctx = tok_encode(ctx);
    const size_t n = std::min(e.ctx.size(), whole.size());
    e.cont.assign(whole.begin() + n, whole.end());
    return e;
}

double sample_stderr(const std::vector<double>& x) {
    const double n = double(x.size());
    if (n < 2) return 0.0;
    const double mu = std::accumulate(x.begin(), x.end(), 0.0) / n;
    double ss = 0;
    for (double v : x) ss += (v - mu) * (v - mu);
    return std::sqrt(ss / (n - 1)) / std::sqrt(n);
}

int argmax(const std::vector<double>& v) {
    return int(std::max_element(v.begin(), v.end()) - v.begin());  // first maximum, as numpy
}

}  // namespace

std::vector<double> loglikelihoods(const McModel& model, const Encoder& encode, const std::vector<McRequest>& reqs,
                                   const McOptions& opt) {
    struct Item {
        std::vector<int> ctx, cont;  // as encoded (ctx: the prefix the model sees before the continuation)
        bool truncated;              // longer than max_length + 1: cut from the left
    };
    std::vector<Item> items;
    items.reserve(reqs.size());
    for (size_t i = 0; i < reqs.size(); ++i) {
        auto e = encode_pair(encode, reqs[i].context, reqs[i].continuation, opt.bos_token, opt.prefix_token);
        if (e.cont.empty())
            throw std::invalid_argument("multiple choice: continuation '" + reqs[i].continuation +
                                        "' encodes to no tokens");
        const bool cut = (int64_t)(e.ctx.size() + e.cont.size()) > opt.max_length + 1;
        items.push_back({std::move(e.ctx), std::move(e.cont), cut});
    }
    std::vector<double> out(reqs.size(), 0.0);
    const int64_t bs = std::max<int64_t>(1, opt.batch_size);
    int64_t done = 0;
    torch::NoGradGuard ng;

    // Requests the full-sequence path scores: all, or (with a prefix scorer)
    // only those cut from the left, whose prefix is no longer their context.
    std::vector<size_t> full;
    if (model.prefix) {
        // Group the requests by context tokens; run groups of one context
        // length together, longest first.
        std::map<std::vector<int>, std::vector<size_t>> groups;
        for (size_t i = 0; i < items.size(); ++i) {
            if (items[i].truncated)
                full.push_back(i);
            else
                groups[items[i].ctx].push_back(i);
        }
        // A context shared by k > 1 choices runs once instead of k times;
        // a one-choice context (WinoGrande's partial evaluation) gains
        // nothing and stays on the full-sequence path.
        std::vector<const std::pair<const std::vector<int>, std::vector<size_t>>*> order;
        for (const auto& g : groups) {
            if (g.second.size() > 1)
                order.push_back(&g);
            else
                full.insert(full.end(), g.second.begin(), g.second.end());
        }
        std::stable_sort(order.begin(), order.end(),
                         [](auto* a, auto* b) { return a->first.size() > b->first.size(); });
        for (size_t s = 0; s < order.size();) {
            const size_t len = order[s]->first.size();
            size_t e = s, rows = 0;
            while (e < order.size() && order[e]->first.size() == len &&
                   (e == s || rows + order[e]->second.size() <= (size_t)bs))
                rows += order[e++]->second.size();
            auto ctx = torch::empty({(int64_t)(e - s), (int64_t)len}, torch::kInt64);
            auto acc = ctx.accessor<int64_t, 2>();
            std::vector<std::vector<std::vector<int>>> conts(e - s);
            for (size_t g = s; g < e; ++g) {
                for (size_t t = 0; t < len; ++t) acc[g - s][t] = order[g]->first[t];
                for (size_t i : order[g]->second) conts[g - s].push_back(items[i].cont);
            }
            auto lls = model.prefix(ctx, conts);
            for (size_t g = s; g < e; ++g)
                for (size_t c = 0; c < order[g]->second.size(); ++c) out[order[g]->second[c]] = lls[g - s][c];
            done += (int64_t)rows;
            if (opt.progress) opt.progress(done, (int64_t)items.size());
            s = e;
        }
    } else {
        full.resize(items.size());
        std::iota(full.begin(), full.end(), 0);
    }

    // Full sequences: input = (ctx + cont)[-(max_length+1):][:-1]; the last
    // n_cont positions predict the continuation. Longest first so a batch's
    // padding stays small; right padding cannot change a causal model's
    // earlier positions.
    auto input_len = [&](size_t i) {
        return std::min<int64_t>((int64_t)(items[i].ctx.size() + items[i].cont.size()), opt.max_length + 1) - 1;
    };
    std::stable_sort(full.begin(), full.end(), [&](size_t a, size_t b) { return input_len(a) > input_len(b); });
    for (size_t s = 0; s < full.size(); s += bs) {
        const size_t e = std::min(full.size(), s + bs);
        const int64_t len = input_len(full[s]);
        auto ids = torch::zeros({(int64_t)(e - s), len}, torch::kInt64);
        auto acc = ids.accessor<int64_t, 2>();
        for (size_t k = s; k < e; ++k) {
            const auto& it = items[full[k]];
            std::vector<int> seq = it.ctx;
            seq.insert(seq.end(), it.cont.begin(), it.cont.end());
            const int64_t L = input_len(full[k]);
            for (int64_t t = 0; t < L; ++t) acc[k - s][t] = seq[seq.size() - 1 - L + t];
        }
        auto logits = model.logits(ids);
        const auto dt = logits.scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
        for (size_t k = s; k < e; ++k) {
            const auto& it = items[full[k]];
            const int64_t L = input_len(full[k]);
            const int64_t n_cont = std::min<int64_t>((int64_t)it.cont.size(), L);
            auto lp = torch::log_softmax(logits[k - s].narrow(0, L - n_cont, n_cont).to(dt), -1);
            auto tgt = torch::tensor(std::vector<int64_t>(it.cont.end() - n_cont, it.cont.end()), torch::kInt64)
                           .to(lp.device());
            out[full[k]] = lp.gather(1, tgt.unsqueeze(1)).to(torch::kFloat64).sum().item<double>();
        }
        done += (int64_t)(e - s);
        if (opt.progress) opt.progress(done, (int64_t)items.size());
    }
    return out;
}

McResult score_mc(const McTask& task, const std::vector<std::vector<double>>& lls) {
    if (lls.size() != task.docs.size())
        throw std::invalid_argument("score_mc: one row of log-likelihoods per document");
    McResult r;
    r.task = task.name;
    r.headline = task.headline;
    r.n = (int64_t)task.docs.size();
    r.lls = lls;
    std::vector<double> hit, hit_norm;
    for (size_t d = 0; d < task.docs.size(); ++d) {
        const auto& doc = task.docs[d];
        std::vector<double> norm(lls[d].size());
        for (size_t c = 0; c < norm.size(); ++c)
            norm[c] = lls[d][c] / std::max<double>(1.0, double(utf8_length(doc.choices[c])));
        r.pred.push_back(argmax(lls[d]));
        r.pred_norm.push_back(argmax(norm));
        hit.push_back(r.pred.back() == doc.label ? 1.0 : 0.0);
        hit_norm.push_back(r.pred_norm.back() == doc.label ? 1.0 : 0.0);
    }
    if (r.n > 0) {
        r.acc = std::accumulate(hit.begin(), hit.end(), 0.0) / r.n;
        r.acc_norm = std::accumulate(hit_norm.begin(), hit_norm.end(), 0.0) / r.n;
    }
    r.acc_stderr = sample_stderr(hit);
    r.acc_norm_stderr = sample_stderr(hit_norm);
    return r;
}

McResult evaluate_mc(const McModel& model, const Encoder& encode, const McTask& task, const McOptions& opt) {
    std::vector<McRequest> reqs;
    for (const auto& d : task.docs) reqs.insert(reqs.end(), d.requests.begin(), d.requests.end());
    auto flat = loglikelihoods(model, encode, reqs, opt);
    std::vector<std::vector<double>> lls;
    size_t k = 0;
    for (const auto& d : task.docs) {
        lls.emplace_back(flat.begin() + k, flat.begin() + k + d.requests.size());
        k += d.requests.size();
    }
    return score_mc(task, lls);
}

}  // namespace bimamba::eval
