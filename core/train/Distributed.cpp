#include "core/train/Distributed.h"

// TorchConfig.cmake defines USE_C10D_GLOO / USE_C10D_NCCL for every target;
// the wheel ships no Gloo headers, so ProcessGroupGloo.hpp is parsed against
// core/train/gloo_shim (see its README), on the include path of this library only.
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/csrc/distributed/c10d/Work.hpp>

#ifdef BIMAMBA_HAVE_NCCL
#include <c10/cuda/CUDAFunctions.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <stdexcept>
#include <thread>

namespace bimamba::train {

namespace {

const char* env_str(const char* name) {
    const char* v = std::getenv(name);
    return v && *v ? v : nullptr;
}

// -1 when unset; throws for a non-integer.
long env_long(const char* name) {
    const char* v = env_str(name);
    if (!v) return -1;
    char* end = nullptr;
    errno = 0;
    const long x = std::strtol(v, &end, 10);
    if (errno || *end || x < 0 || x > (1L << 24))
        throw std::invalid_argument(std::string("distributed training: ") + name + "='" + v +
                                    "' is not a non-negative integer");
    return x;
}

}  // namespace

DistEnv DistEnv::from_environment() {
    DistEnv e;
    const long world = env_long("WORLD_SIZE");
    if (world == 0) throw std::invalid_argument("distributed training: WORLD_SIZE=0; it must be at least 1");
    if (world <= 1) return e;  // unset or 1: one process
    e.world_size = static_cast<int>(world);
    const std::string where =
        " (WORLD_SIZE=" + std::to_string(world) + " asks for data-parallel training; " + "see docs/multi-gpu.md)";
    const long rank = env_long("RANK");
    if (rank < 0) throw std::invalid_argument("distributed training: RANK is not set" + where);
    if (rank >= world)
        throw std::invalid_argument("distributed training: RANK=" + std::to_string(rank) +
                                    " is not below WORLD_SIZE=" + std::to_string(world));
    e.rank = static_cast<int>(rank);
    const long lws = env_long("LOCAL_WORLD_SIZE");
    e.local_world_size = lws > 0 ? static_cast<int>(lws) : 0;
    const long lr = env_long("LOCAL_RANK");
    e.local_rank = lr >= 0 ? static_cast<int>(lr) : e.rank;  // by hand on one host: LOCAL_RANK = RANK
    if (e.local_world_size > 0 && e.local_rank >= e.local_world_size)
        throw std::invalid_argument("distributed training: LOCAL_RANK=" + std::to_string(e.local_rank) +
                                    " is not below LOCAL_WORLD_SIZE=" + std::to_string(e.local_world_size));
    const char* addr = env_str("MASTER_ADDR");
    if (!addr) throw std::invalid_argument("distributed training: MASTER_ADDR is not set" + where);
    e.master_addr = addr;
    const long port = env_long("MASTER_PORT");
    if (port < 0) throw std::invalid_argument("distributed training: MASTER_PORT is not set" + where);
    if (port == 0 || port > 65535)
        throw std::invalid_argument("distributed training: MASTER_PORT=" + std::to_string(port) + " is not a TCP port");
    e.master_port = static_cast<int>(port);
    if (const char* mb = std::getenv("BIMAMBA_DDP_BUCKET_MB")) e.bucket_mb = std::max(0.001, std::atof(mb));
    return e;
}

std::chrono::milliseconds dist_timeout() {
    const char* v = env_str("BIMAMBA_DIST_TIMEOUT_S");
    const double s = v ? std::atof(v) : 1800.0;
    return std::chrono::milliseconds(static_cast<int64_t>(1000.0 * (s > 0 ? s : 1800.0)));
}

bool nccl_available() {
#ifdef BIMAMBA_HAVE_NCCL
    return true;
#else
    return false;
#endif
}

Distributed::Distributed(const DistEnv& env) : env_(env) {
    if (!env_.distributed()) throw std::logic_error("Distributed: WORLD_SIZE is 1");
    c10d::TCPStoreOptions o;
    o.port = static_cast<uint16_t>(env_.master_port);
    // Under torchrun the elastic agent already hosts the store at MASTER_PORT.
    const char* agent = env_str("TORCHELASTIC_USE_AGENT_STORE");
    const bool agent_store = agent && (std::string(agent) == "True" || std::string(agent) == "1");
    o.isServer = env_.rank == 0 && !agent_store;
    o.numWorkers = static_cast<size_t>(env_.world_size);
    o.waitWorkers = true;
    o.timeout = dist_timeout();
    try {
        store_ = c10::make_intrusive<c10d::TCPStore>(env_.master_addr, o);
    } catch (const std::exception& e) {
        throw std::runtime_error("distributed training: rank " + std::to_string(env_.rank) + " of " +
                                 std::to_string(env_.world_size) + " could not rendezvous at " + env_.master_addr +
                                 ":" + std::to_string(env_.master_port) + " (" +
                                 (o.isServer ? "hosting the store" : "connecting to the store") + "): " + e.what());
    }
}

void Distributed::shutdown() {
    if (pg_ && !shut_down_) {
        shut_down_ = true;
        pg_->shutdown();  // NCCL: finalizes the communicators (destroy_process_group); Gloo: nothing
    }
}

Distributed::~Distributed() {
    // Left without shutdown(): an error unwound the run. Abort rather than wait
    // for ranks that may never arrive.
    if (pg_ && !shut_down_) try {
            pg_->abort();
        } catch (...) {
        }
}

void Distributed::init_process_group(const torch::Device& device) {
    device_ = device;
    const auto timeout = dist_timeout();
    if (device.is_cuda()) {
#ifdef BIMAMBA_HAVE_NCCL
        c10::cuda::set_device(device.index());
        auto opts = c10d::ProcessGroupNCCL::Options::create();
        opts->timeout = timeout;
        pg_ = c10::make_intrusive<c10d::ProcessGroupNCCL>(store_, env_.rank, env_.world_size, opts);
        backend_name_ = "nccl";
#else
        throw std::runtime_error(
            "distributed training on CUDA needs NCCL, which this build does not have (it was built without CUDA "
            "kernels or without nccl.h: configure with -DBIMAMBA_CUDA=ON where the CUDA toolkit and the NCCL headers "
            "are installed), or set device = \"cpu\" to train over Gloo");
#endif
    } else {
        auto opts = c10d::ProcessGroupGloo::Options::create(timeout);
        // GLOO_SOCKET_IFNAME picks the network interface (as in torch.distributed);
        // otherwise the address this host's name resolves to, or loopback.
        if (const char* ifname = env_str("GLOO_SOCKET_IFNAME"))
            opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
        else
            opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
        opts->threads = 2;
        pg_ = c10::make_intrusive<c10d::ProcessGroupGloo>(store_, env_.rank, env_.world_size, opts);
        backend_name_ = "gloo";
    }
}

c10::intrusive_ptr<c10d::Work> Distributed::allreduce_sum_async(torch::Tensor& t) {
    std::vector<at::Tensor> v{t};
    c10d::AllreduceOptions o;
    o.reduceOp = c10d::ReduceOp::SUM;
    return pg_->allreduce(v, o);
}

void Distributed::allreduce_sum(torch::Tensor& t) {
    allreduce_sum_async(t)->wait();
}

void Distributed::broadcast(const std::vector<torch::Tensor>& tensors, int root) {
    c10d::BroadcastOptions o;
    o.rootRank = root;
    o.rootTensor = 0;
    for (const auto& t : tensors) {
        std::vector<at::Tensor> v{t};
        pg_->broadcast(v, o)->wait();
    }
}

void Distributed::barrier() {
    c10d::BarrierOptions o;
    if (device_.is_cuda()) o.device_ids = {device_.index()};
    pg_->barrier(o)->wait();
}

void Distributed::agree(const std::string& phase, const std::string& error) {
    const std::string key = "bimamba/agree/" + phase + "/";
    store_->set(key + std::to_string(env_.rank), error);
    // Rank 0 hosts the store: it may leave only after every rank has read the
    // verdict (a rank with its own error need not read; it has its message).
    auto done = [&] { store_->add(key + "done", 1); };
    auto wait_done = [&] {
        if (env_.rank != 0) return;
        const auto t0 = std::chrono::steady_clock::now();
        while (store_->add(key + "done", 0) < env_.world_size &&
               std::chrono::steady_clock::now() - t0 < std::chrono::seconds(60))
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
    };
    if (!error.empty()) {
        done();
        wait_done();
        throw std::runtime_error(error);
    }
    std::vector<std::string> keys;
    for (int r = 0; r < env_.world_size; ++r) keys.push_back(key + std::to_string(r));
    try {
        store_->wait(keys, dist_timeout());
    } catch (const std::exception& e) {
        throw std::runtime_error("distributed training: rank " + std::to_string(env_.rank) +
                                 " timed out waiting for the other ranks (" + phase + "): " + e.what());
    }
    std::string failed;
    for (int r = 0; r < env_.world_size; ++r) {
        const auto v = store_->get(keys[r]);
        if (v.empty()) continue;
        failed += (failed.empty() ? "" : "; ") + std::string("rank ") + std::to_string(r) + ": " +
                  std::string(v.begin(), v.end());
    }
    done();
    if (failed.empty()) return;
    wait_done();
    throw std::runtime_error("distributed training: another rank failed (" + failed + ")");
}

std::string Distributed::share_string(const std::string& key, const std::string& value) {
    const std::string k = "bimamba/share/" + key;
    if (env_.rank == 0) store_->set(k, value);
    try {
        store_->wait({k}, dist_timeout());
    } catch (const std::exception& e) {
        throw std::runtime_error("distributed training: rank " + std::to_string(env_.rank) +
                                 " timed out waiting for rank 0 (" + key + "): " + e.what());
    }
    const auto v = store_->get(k);
    return std::string(v.begin(), v.end());
}

}  // namespace bimamba::train
