#include "engine/expression_pool.hpp"
#include "workflows/json_text.hpp"

#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <optional>

namespace wf::engine {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

// The worker's end of its socket.
constexpr int kWorkerFd = 3;

// Replies: one kind byte, the Status code (4 bytes), the payload's length (8 bytes), the payload.
constexpr char kReplyResult = 'R';    // payload: the result as JSON text
constexpr char kReplyError = 'E';     // payload: the Status message
constexpr char kReplyMemory = 'M';    // memory ran out; the worker exits after sending it
constexpr char kReplyTooLarge = 'L';  // the result is larger than kExpressionMessageBytes
constexpr size_t kReplyHeader = 1 + 4 + 8;
// Requests: the program's length (4 bytes), the input's length (8 bytes), program, input.
constexpr size_t kRequestHeader = 4 + 8;

void PutInt(std::string& out, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

uint64_t GetInt(const char* in, int bytes) {
  uint64_t value = 0;
  for (int i = 0; i < bytes; ++i) {
    value |= static_cast<uint64_t>(static_cast<unsigned char>(in[i])) << (8 * i);
  }
  return value;
}

std::string Reply(char kind, ErrorCode code, std::string_view payload) {
  std::string out;
  out.reserve(kReplyHeader + payload.size());
  out.push_back(kind);
  PutInt(out, static_cast<uint64_t>(code), 4);
  PutInt(out, payload.size(), 8);
  out.append(payload);
  return out;
}

std::string Describe(std::chrono::milliseconds limit) {
  if (limit.count() % 1000 == 0) return std::to_string(limit.count() / 1000) + " s";
  return std::to_string(limit.count()) + " ms";
}

// ---------------------------------------------------------------------------------------------
// The worker side.

bool ReadExactly(int fd, char* out, size_t n) {
  while (n > 0) {
    ssize_t got = read(fd, out, n);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return false;
    out += got;
    n -= static_cast<size_t>(got);
  }
  return true;
}

bool WriteExactly(int fd, const char* data, size_t n) {
  while (n > 0) {
    ssize_t sent = send(fd, data, n, MSG_NOSIGNAL);
    if (sent < 0 && errno == EINTR) continue;
    if (sent <= 0) return false;
    data += sent;
    n -= static_cast<size_t>(sent);
  }
  return true;
}

// `reply`: the out-of-memory reply, built before any evaluation so that this only writes it.
[[noreturn]] void OnJqOutOfMemory(void* reply) {
  const auto* text = static_cast<const std::string*>(reply);
  (void)WriteExactly(kWorkerFd, text->data(), text->size());
  _exit(3);
}

size_t AddressSpaceInUse() {
  FILE* statm = std::fopen("/proc/self/statm", "r");
  if (statm == nullptr) return 0;
  unsigned long pages = 0;
  if (std::fscanf(statm, "%lu", &pages) != 1) pages = 0;
  std::fclose(statm);
  return static_cast<size_t>(pages) * static_cast<size_t>(sysconf(_SC_PAGESIZE));
}

std::string Serve(const std::string& program, const std::string& input_text) {
  try {
    workflows::ExpressionError error;
    std::optional<workflows::Expression> expression =
        workflows::Expression::Compile(program, &error);
    if (!expression) {
      return Reply(kReplyError, ErrorCode::kInvalid,
                   "expression `" + program + "`: " + error.message);
    }
    json input = workflows::ParseJson(input_text);
    if (input.is_discarded()) {
      return Reply(kReplyError, ErrorCode::kInternal,
                   "expression `" + program + "`: the engine sent an input that is not JSON");
    }
    Result<json> result = expression->Evaluate(input);
    if (!result) {
      const std::string& message = result.error().message();
      if (result.error().code() == ErrorCode::kInternal &&
          message.size() >= workflows::kOutOfMemory.size() &&
          message.compare(message.size() - workflows::kOutOfMemory.size(),
                          workflows::kOutOfMemory.size(), workflows::kOutOfMemory) == 0) {
        return Reply(kReplyMemory, ErrorCode::kInvalid, "");
      }
      return Reply(kReplyError, result.error().code(), message);
    }
    std::string text = result->dump(-1, ' ', false, json::error_handler_t::replace);
    if (text.size() > kExpressionMessageBytes)
      return Reply(kReplyTooLarge, ErrorCode::kInvalid, "");
    return Reply(kReplyResult, ErrorCode::kOk, text);
  } catch (const std::bad_alloc&) {
    return Reply(kReplyMemory, ErrorCode::kInvalid, "");
  } catch (const std::exception& e) {
    return Reply(kReplyError, ErrorCode::kInternal,
                 "expression `" + program + "`: " + std::string(e.what()));
  }
}

}  // namespace

int RunExpressionWorker(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s %s MEMORY_BYTES TIME_LIMIT_MS\n", argv[0],
                 kExpressionWorkerMode);
    return 2;
  }
  const size_t memory = std::strtoull(argv[2], nullptr, 10);
  const long limit_ms = std::strtol(argv[3], nullptr, 10);
  // A Ctrl-C reaches the whole process group: the engine decides when its workers go.
  signal(SIGINT, SIG_IGN);
  signal(SIGPIPE, SIG_IGN);
  std::string memory_reply = Reply(kReplyMemory, ErrorCode::kInvalid, "");
  workflows::SetJqOutOfMemoryHandler(&OnJqOutOfMemory, &memory_reply);
  if (memory > 0) {
    const rlim_t limit = static_cast<rlim_t>(AddressSpaceInUse() + memory);
    struct rlimit bound = {limit, limit};
    if (setrlimit(RLIMIT_AS, &bound) != 0) {
      std::perror("expression worker: setrlimit");
      return 1;
    }
  }
  // Twice the engine's deadline: the engine kills a worker at its deadline; this only ends a
  // worker whose engine died while it ran away.
  const unsigned backstop = static_cast<unsigned>((2 * limit_ms + 999) / 1000);
  std::string program;
  std::string input;
  for (;;) {
    char header[kRequestHeader];
    if (!ReadExactly(kWorkerFd, header, sizeof(header))) return 0;  // the engine closed it
    const uint64_t program_size = GetInt(header, 4);
    const uint64_t input_size = GetInt(header + 4, 8);
    if (program_size > kExpressionMessageBytes || input_size > kExpressionMessageBytes) return 1;
    program.resize(program_size);
    input.resize(input_size);
    if (!ReadExactly(kWorkerFd, program.data(), program.size()) ||
        !ReadExactly(kWorkerFd, input.data(), input.size())) {
      return 0;
    }
    if (backstop > 0) alarm(backstop);
    std::string reply = Serve(program, input);
    alarm(0);
    if (!WriteExactly(kWorkerFd, reply.data(), reply.size())) return 0;
    if (reply[0] == kReplyMemory) return 3;  // its heap may be in any state: start afresh
  }
}

// ---------------------------------------------------------------------------------------------
// The engine side.

ExpressionPool::ExpressionPool(ExpressionPoolOptions options)
    : options_(std::move(options)), workers_(static_cast<size_t>(std::max(1, options_.workers))) {}

ExpressionPool::~ExpressionPool() {
  for (Worker& worker : workers_) Stop(worker, true);  // no evaluation is running any more
}

std::vector<pid_t> ExpressionPool::BusyWorkers() const {
  std::lock_guard lock(mutex_);
  std::vector<pid_t> pids;
  for (const Worker& worker : workers_) {
    if (worker.busy && worker.pid > 0) pids.push_back(worker.pid);
  }
  return pids;
}

int64_t ExpressionPool::started() const {
  std::lock_guard lock(mutex_);
  return started_;
}

ExpressionPool::Worker* ExpressionPool::Acquire() {
  std::unique_lock lock(mutex_);
  for (;;) {
    // Prefer a running worker; start a new one only when none is idle.
    Worker* stopped = nullptr;
    for (Worker& worker : workers_) {
      if (worker.busy) continue;
      if (worker.pid > 0) {
        worker.busy = true;
        return &worker;
      }
      if (stopped == nullptr) stopped = &worker;
    }
    if (stopped != nullptr) {
      stopped->busy = true;
      return stopped;
    }
    idle_.wait(lock);
  }
}

void ExpressionPool::Release(Worker* worker) {
  {
    std::lock_guard lock(mutex_);
    worker->busy = false;
  }
  idle_.notify_one();
}

Status ExpressionPool::Start(Worker& worker) {
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
    return Status::Unavailable(std::string("cannot start an expression worker: socketpair: ") +
                               std::strerror(errno));
  }
  std::vector<std::string> args = options_.worker_command;
  if (args.empty()) args = {"/proc/self/exe", kExpressionWorkerMode};
  args.push_back(std::to_string(options_.memory_bytes));
  args.push_back(std::to_string(options_.time_limit.count()));
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], kWorkerFd);
  posix_spawn_file_actions_addclosefrom_np(&actions, kWorkerFd + 1);
  pid_t pid = 0;
  // No environment: a worker evaluates applicants' data and needs none of the engine's secrets
  // (database passwords, departments' tokens); jq's `env` and `$ENV` are refused anyway.
  char* no_environment[] = {nullptr};
  const int failed = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), no_environment);
  posix_spawn_file_actions_destroy(&actions);
  close(fds[1]);
  if (failed != 0) {
    close(fds[0]);
    return Status::Unavailable("cannot start an expression worker (" + args[0] +
                               "): " + std::strerror(failed));
  }
  std::lock_guard lock(mutex_);
  worker.pid = pid;
  worker.fd = fds[0];
  ++started_;
  return Status::Ok();
}

int ExpressionPool::Stop(Worker& worker, bool kill) {
  int status = 0;
  if (worker.fd >= 0) close(worker.fd);
  if (worker.pid > 0) {
    if (kill) ::kill(worker.pid, SIGKILL);
    while (waitpid(worker.pid, &status, 0) < 0 && errno == EINTR) {
    }
  }
  std::lock_guard lock(mutex_);
  worker.fd = -1;
  worker.pid = 0;
  return status;
}

ExpressionPool::Answer ExpressionPool::Exchange(Worker& worker, const std::string& request,
                                                std::string* reply) {
  const Clock::time_point deadline = Clock::now() + options_.time_limit;
  // Waits until the socket is ready for `events`; false on the deadline.
  auto wait = [&](short events) -> std::optional<bool> {
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() < 0) return false;
      pollfd one{worker.fd, events, 0};
      int ready = poll(&one, 1, static_cast<int>(left.count()) + 1);
      if (ready < 0 && errno == EINTR) continue;
      if (ready < 0) return std::nullopt;
      if (ready == 0) continue;  // re-check the deadline
      return true;
    }
  };
  size_t sent = 0;
  while (sent < request.size()) {
    std::optional<bool> ready = wait(POLLOUT);
    if (!ready) return Answer::kDied;
    if (!*ready) return Answer::kTimedOut;
    ssize_t n =
        send(worker.fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) return Answer::kDied;
    sent += static_cast<size_t>(n);
  }
  reply->clear();
  size_t wanted = kReplyHeader;
  char buffer[65536];
  while (reply->size() < wanted) {
    std::optional<bool> ready = wait(POLLIN);
    if (!ready) return Answer::kDied;
    if (!*ready) return Answer::kTimedOut;
    ssize_t n =
        recv(worker.fd, buffer, std::min(sizeof(buffer), wanted - reply->size()), MSG_DONTWAIT);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) return Answer::kDied;
    reply->append(buffer, static_cast<size_t>(n));
    if (wanted == kReplyHeader && reply->size() == kReplyHeader) {
      const uint64_t payload = GetInt(reply->data() + 5, 8);
      if (payload > kExpressionMessageBytes) return Answer::kDied;  // not our worker talking
      wanted += payload;
    }
  }
  return Answer::kDone;
}

Result<json> ExpressionPool::Evaluate(const workflows::Expression& expression, const json& input) {
  if (expression.bounded()) return expression.Evaluate(input);
  const std::string& program = expression.program();
  std::string request;
  try {
    std::string text = workflows::DumpJson(input, json::error_handler_t::replace);
    if (text.size() > kExpressionMessageBytes) {
      return Status::Invalid("expression `" + program + "`: its input is larger than " +
                             std::to_string(kExpressionMessageBytes >> 20) + " MB");
    }
    request.reserve(kRequestHeader + program.size() + text.size());
    PutInt(request, program.size(), 4);
    PutInt(request, text.size(), 8);
    request += program;
    request += text;
  } catch (const std::bad_alloc&) {
    return Status::Unavailable("expression `" + program + "`: no memory to send its input");
  }
  const std::string ran_past =
      "expression `" + program + "` ran past " + Describe(options_.time_limit);
  const std::string used_more = "expression `" + program + "` used more than " +
                                std::to_string(options_.memory_bytes >> 20) + " MB";
  // A worker that dies unasked is replaced and the request sent once more.
  for (int attempt = 0;; ++attempt) {
    Worker* worker = Acquire();
    if (worker->pid == 0) {
      if (Status started = Start(*worker); !started.ok()) {
        Release(worker);
        return started;
      }
    }
    std::string reply;
    const Answer answer = Exchange(*worker, request, &reply);
    if (answer == Answer::kTimedOut) {
      Stop(*worker, true);
      Release(worker);
      return Status::Invalid(ran_past);
    }
    if (answer == Answer::kDied) {
      const int status = Stop(*worker, true);
      Release(worker);
      if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM) return Status::Invalid(ran_past);
      if (WIFEXITED(status) && WEXITSTATUS(status) == 3) return Status::Invalid(used_more);
      // SIGSEGV or SIGBUS when the stack could not grow under the address-space limit, SIGABRT
      // from a library that could not allocate: memory, most likely. SIGKILL came from outside
      // (an operator, the kernel's OOM killer): try once more on a fresh worker.
      const bool killed = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
      if (killed && attempt == 0) continue;
      if (killed) {
        return Status::Unavailable("expression `" + program +
                                   "`: its worker was killed twice while evaluating it");
      }
      return Status::Invalid(used_more + " (its worker died: " +
                             (WIFSIGNALED(status) ? "signal " + std::to_string(WTERMSIG(status))
                                                  : "exit " + std::to_string(WEXITSTATUS(status))) +
                             ")");
    }
    const char kind = reply[0];
    const auto code = static_cast<ErrorCode>(GetInt(reply.data() + 1, 4));
    std::string payload = reply.substr(kReplyHeader);
    if (kind == kReplyMemory) {
      Stop(*worker, false);  // it exits after this reply
      Release(worker);
      return Status::Invalid(used_more);
    }
    Release(worker);
    switch (kind) {
      case kReplyResult: {
        json value = workflows::ParseJson(payload);
        if (value.is_discarded()) {
          return Status::Internal("expression `" + program + "`: its worker answered no JSON");
        }
        return value;
      }
      case kReplyTooLarge:
        return Status::Invalid("expression `" + program + "`: its result is larger than " +
                               std::to_string(kExpressionMessageBytes >> 20) + " MB");
      case kReplyError:
        return Status(code == ErrorCode::kOk ? ErrorCode::kInternal : code, std::move(payload));
      default:
        return Status::Internal("expression `" + program + "`: its worker answered nonsense");
    }
  }
}

}  // namespace wf::engine
