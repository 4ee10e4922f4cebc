#include "core/eval/MultipleChoice.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>

namespace bimamba::eval {

namespace {

struct Encoded {
    std::vector<int> ctx, cont;
};

Encoded encode_pair(const Encoder& encode, std::string ctx, std::string cont, int prefix_token) {
    size_t keep = ctx.size();
    while (keep > 0 && (ctx[keep - 1] == ' ' || ctx[keep - 1] == '\t' || ctx[keep - 1] == '\n')) --keep;
    cont = ctx.substr(keep) + cont;
    ctx.resize(keep);
    Encoded e;
    if (ctx.empty()) {
        e.ctx = {prefix_token};
        e.cont = encode(cont);
        return e;
    }
    auto whole = encode(ctx + cont);
    e.ctx = encode(ctx);
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

std::vector<double> loglikelihoods(const LogitsFn& model, const Encoder& encode, const std::vector<McRequest>& reqs,
                                   const McOptions& opt) {
    struct Item {
        std::vector<int> input;  // tokens fed to the model
        int64_t n_cont;          // the last n_cont input positions predict the continuation
        std::vector<int> cont;
        size_t index;
    };
    std::vector<Item> items;
    items.reserve(reqs.size());
    for (size_t i = 0; i < reqs.size(); ++i) {
        auto e = encode_pair(encode, reqs[i].context, reqs[i].continuation, opt.prefix_token);
        if (e.cont.empty())
            throw std::invalid_argument("multiple choice: continuation '" + reqs[i].continuation + "' encodes to no tokens");
        std::vector<int> full = e.ctx;
        full.insert(full.end(), e.cont.begin(), e.cont.end());
        const int64_t keep = std::min<int64_t>((int64_t)full.size(), opt.max_length + 1);
        std::vector<int> input(full.end() - keep, full.end() - 1);
        const int64_t n_cont = std::min<int64_t>((int64_t)e.cont.size(), (int64_t)input.size());
        items.push_back({std::move(input), n_cont, std::vector<int>(e.cont.end() - n_cont, e.cont.end()), i});
    }
    // Longest first so a batch's padding stays small; right padding cannot
    // change a causal model's earlier positions.
    std::vector<size_t> order(items.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return items[a].input.size() > items[b].input.size(); });
    std::vector<double> out(reqs.size(), 0.0);
    torch::NoGradGuard ng;
    const int64_t bs = std::max<int64_t>(1, opt.batch_size);
    for (size_t s = 0; s < order.size(); s += bs) {
        const size_t e = std::min(order.size(), s + bs);
        const int64_t len = (int64_t)items[order[s]].input.size();
        auto ids = torch::zeros({(int64_t)(e - s), len}, torch::kInt64);
        auto acc = ids.accessor<int64_t, 2>();
        for (size_t k = s; k < e; ++k) {
            const auto& in = items[order[k]].input;
            for (size_t t = 0; t < in.size(); ++t) acc[k - s][t] = in[t];
        }
        auto logits = model(ids);
        const auto dt = logits.scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
        for (size_t k = s; k < e; ++k) {
            const auto& it = items[order[k]];
            const int64_t L = (int64_t)it.input.size();
            auto lp = torch::log_softmax(logits[k - s].narrow(0, L - it.n_cont, it.n_cont).to(dt), -1);
            auto tgt = torch::tensor(std::vector<int64_t>(it.cont.begin(), it.cont.end()), torch::kInt64).to(lp.device());
            out[it.index] = lp.gather(1, tgt.unsqueeze(1)).to(torch::kFloat64).sum().item<double>();
        }
        if (opt.progress) opt.progress((int64_t)e, (int64_t)order.size());
    }
    return out;
}

McResult score_mc(const McTask& task, const std::vector<std::vector<double>>& lls) {
    if (lls.size() != task.docs.size()) throw std::invalid_argument("score_mc: one row of log-likelihoods per document");
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
            norm[c] = lls[d][c] / std::max<double>(1.0, double(doc.choices[c].size()));
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

McResult evaluate_mc(const LogitsFn& model, const Encoder& encode, const McTask& task, const McOptions& opt) {
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
