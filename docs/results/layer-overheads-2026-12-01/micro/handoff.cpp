// Session 21: where a hand-off's microseconds go on many cores, and variants of the pool.
// A copy of kernels/cpu/ThreadPool's scheme with switches and time stamps (rdtsc).
// usage: handoff THREADS JOBS ROUNDS WORK_NS
#include <immintrin.h>
#include <x86intrin.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

struct Cfg {
    const char* name;
    bool pause = true;          // PAUSE in the workers' spin
    bool caller_steals = true;  // the caller takes others' leftovers
    bool lazy_runs = false;     // the caller does not reset the runs (measurement only: unsafe in general)
    bool relaxed_pub = false;   // publish with a release store, not seq_cst
    int chunks_per_thread = 4;
};

static double tsc_per_ns = 1;
static void calibrate() {
    auto t0 = std::chrono::steady_clock::now();
    uint64_t c0 = __rdtsc();
    while (std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(200)) {
    }
    uint64_t c1 = __rdtsc();
    tsc_per_ns =
        (double)(c1 - c0) / std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
}
static void busy_ns(int ns) {
    const uint64_t until = __rdtsc() + (uint64_t)(ns * tsc_per_ns);
    while (__rdtsc() < until) _mm_pause();
}

class Pool {
public:
    Pool(int threads, Cfg c) : cfg_(c), T_(threads) {
        runs_.reset(new Run[threads]);
        probe_.reset(new Probe[threads]);
        for (int i = 1; i < threads; ++i) workers_.emplace_back([this, i] { worker(i); });
    }
    ~Pool() {
        stop_.store(true);
        generation_.fetch_add(1);
        for (auto& t : workers_) t.join();
    }
    struct alignas(64) Probe {
        uint64_t wake = 0, fin = 0;
    };
    uint64_t pub_ = 0, end_ = 0, own_ = 0;
    std::unique_ptr<Probe[]> probe_;

    void parallel_for(int n, const std::function<void(int, int)>& fn) {
        fn_ = &fn;
        n_ = n;
        nchunks_ = std::min(n, cfg_.chunks_per_thread * T_);
        const uint64_t gen = generation_.load(std::memory_order_relaxed) + 1;
        if (!cfg_.lazy_runs)
            for (int i = 0; i < T_; ++i) {
                runs_[i].next.store(
                    ((gen & 0xffffffu) << 40) | ((uint64_t)run_begin(i + 1) << 20) | (uint64_t)run_begin(i),
                    std::memory_order_relaxed);
                runs_[i].done.store(0, std::memory_order_relaxed);
            }
        pub_ = __rdtsc();
        if (cfg_.relaxed_pub)
            generation_.store(gen, std::memory_order_release);
        else
            generation_.store(gen);
        run_chunks(0, gen);
        own_ = __rdtsc();
        const uint64_t tag = (gen & 0xffffffffu) << 32;
        for (;;) {
            uint64_t sum = 0;
            for (int i = 0; i < T_; ++i) {
                const uint64_t d = runs_[i].done.load(std::memory_order_acquire);
                if ((d & ~0xffffffffull) == tag) sum += d & 0xffffffffu;
            }
            if (sum == (uint64_t)nchunks_) break;
            _mm_pause();
        }
        end_ = __rdtsc();
    }

private:
    struct alignas(64) Run {
        std::atomic<uint64_t> next{0};
        std::atomic<uint64_t> done{0};
    };
    int run_begin(int owner) const { return (int)((long long)nchunks_ * owner / T_); }
    bool claim(int owner, uint64_t gen, int* chunk) {
        std::atomic<uint64_t>& next = runs_[owner].next;
        uint64_t t = next.load(std::memory_order_acquire);
        const uint64_t g24 = gen & 0xffffffu;
        for (;;) {
            if ((t >> 40) != g24) {
                if (!cfg_.lazy_runs) return false;
                if (((g24 - (t >> 40)) & 0xffffffu) >= (1u << 23)) return false;  // the word is newer
                const uint64_t fresh =
                    (g24 << 40) | ((uint64_t)run_begin(owner + 1) << 20) | (uint64_t)run_begin(owner);
                if (!next.compare_exchange_weak(t, fresh, std::memory_order_acq_rel)) continue;
                t = fresh;
            }
            if ((t & 0xfffffu) >= ((t >> 20) & 0xfffffu)) return false;
            if (next.compare_exchange_weak(t, t + 1, std::memory_order_acq_rel)) break;
        }
        *chunk = (int)(t & 0xfffffu);
        return true;
    }
    void run_chunks(int id, uint64_t gen) {
        const uint64_t tag = (gen & 0xffffffffu) << 32;
        uint64_t ran = 0;
        int c;
        const int K = (id == 0 && !cfg_.caller_steals) ? 1 : T_;
        for (int k = 0; k < K; ++k) {
            const int owner = (id + k) % T_;
            while (claim(owner, gen, &c)) {
                const int b = (int)((long long)n_ * c / nchunks_), e = (int)((long long)n_ * (c + 1) / nchunks_);
                if (b < e) (*fn_)(b, e);
                ++ran;
                if (k > 0) runs_[id].done.store(tag | ran, std::memory_order_release);
            }
            if (k == 0) runs_[id].done.store(tag | ran, std::memory_order_release);
        }
    }
    void worker(int id) {
        uint64_t seen = 0;
        for (;;) {
            uint64_t g;
            if (cfg_.pause)
                while ((g = generation_.load(std::memory_order_acquire)) == seen) _mm_pause();
            else
                while ((g = generation_.load(std::memory_order_acquire)) == seen) {
                }
            probe_[id].wake = __rdtsc();
            if (stop_.load()) return;
            seen = g;
            run_chunks(id, g);
            probe_[id].fin = __rdtsc();
        }
    }
    Cfg cfg_;
    int T_;
    std::vector<std::thread> workers_;
    const std::function<void(int, int)>* fn_ = nullptr;
    int n_ = 0, nchunks_ = 0;
    alignas(64) std::atomic<uint64_t> generation_{0};
    alignas(64) std::atomic<bool> stop_{false};
    std::unique_ptr<Run[]> runs_;
};

static double med(std::vector<double> v) {
    std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
    return v[v.size() / 2];
}

int main(int argc, char** argv) {
    const int T = argc > 1 ? atoi(argv[1]) : 16, jobs = argc > 2 ? atoi(argv[2]) : 2000;
    const int rounds = argc > 3 ? atoi(argv[3]) : 3, work = argc > 4 ? atoi(argv[4]) : 1500;
    calibrate();
    std::vector<Cfg> cfgs = {
        {"base"},
        {"nopause", false},
        {"nocallersteal", true, false},
        {"lazyruns", true, true, true},
        {"relaxedpub", true, true, false, true},
        {"lazy+nopause", false, true, true},
        {"2chunks", true, true, false, false, 2},
        {"1chunk-nosteal", true, false, false, false, 1},
    };
    std::printf("threads %d, jobs %d, work per chunk %d ns, tsc %.3f/ns\n", T, jobs, work, tsc_per_ns);
    std::printf("%-16s %9s %9s %9s %9s %9s %9s %10s\n", "variant", "empty", "wake_med", "wake_max", "own_done",
                "fin_max", "end", "work-ideal");
    for (int r = 0; r < rounds; ++r)
        for (const Cfg& c : cfgs) {
            Pool p(T, c);
            std::atomic<int> cov{0};
            std::function<void(int, int)> empty = [&](int a, int b) {
                cov.fetch_add(b - a, std::memory_order_relaxed);
            };
            std::function<void(int, int)> busy = [&](int a, int b) { busy_ns(work * (b - a)); };
            const int n = c.chunks_per_thread * T;
            std::vector<double> tot, wmed, wmax, own, fmax, endv, wk;
            for (int w = 0; w < 200; ++w) p.parallel_for(n, empty);
            for (int j = 0; j < jobs; ++j) {
                p.parallel_for(n, empty);
                const double pub = (double)p.pub_;
                std::vector<double> wk_t;
                double fm = 0;
                for (int i = 1; i < T; ++i) {
                    wk_t.push_back(((double)p.probe_[i].wake - pub) / tsc_per_ns / 1000);
                    fm = std::max(fm, ((double)p.probe_[i].fin - pub) / tsc_per_ns / 1000);
                }
                tot.push_back(((double)p.end_ - pub) / tsc_per_ns / 1000);
                wmed.push_back(med(wk_t));
                wmax.push_back(*std::max_element(wk_t.begin(), wk_t.end()));
                own.push_back(((double)p.own_ - pub) / tsc_per_ns / 1000);
                fmax.push_back(fm);
            }
            // busy: each thread ~4 chunks of `work` ns per chunk: ideal = n/T * work (with 4 chunks-per-thread scaled)
            const double ideal = (double)n / T * work / 1000;
            for (int j = 0; j < jobs / 4; ++j) {
                const uint64_t t0 = __rdtsc();
                p.parallel_for(n, busy);
                wk.push_back(((double)__rdtsc() - t0) / tsc_per_ns / 1000 - ideal);
            }
            if (cov.load() != n * (jobs + 200)) std::printf("COVERAGE ERROR %s\n", c.name);
            std::printf("%-16s %9.2f %9.2f %9.2f %9.2f %9.2f %9.2f %10.2f\n", c.name, med(tot), med(wmed), med(wmax),
                        med(own), med(fmax), med(tot), med(wk));
            std::fflush(stdout);
        }
}
