#include "adapters/command.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstring>

#include "adapters/asio.hpp"

#include "adapters/settings.hpp"
#include "workflows/json_limits.hpp"

extern char** environ;

namespace wf::adapters {

namespace {

constexpr int kExitTempFail = 75;  // EX_TEMPFAIL
constexpr std::size_t kStderrInMessage = 2000;
constexpr auto kExitPollInterval = std::chrono::milliseconds(10);

// A file descriptor closed when it goes out of scope unless released.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      Reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  ~Fd() { Reset(); }
  int get() const { return fd_; }
  int Release() { return std::exchange(fd_, -1); }
  void Reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

// Moves `fd` above the standard descriptors (with FD_CLOEXEC), so that the child's dup2 onto
// 0, 1 and 2 never meets one of its own sources even when the engine runs with one of them
// closed.
bool LiftAboveStdio(Fd* fd) {
  if (fd->get() > 2) return true;
  int lifted = ::fcntl(fd->get(), F_DUPFD_CLOEXEC, 3);
  if (lifted < 0) return false;
  *fd = Fd(lifted);
  return true;
}

std::string EnvName(const std::string& entry) { return entry.substr(0, entry.find('=')); }

bool IsCallVariable(const std::string& name) {
  return name == "WF_IDEMPOTENCY_KEY" || name == "WF_CASE" || name == "WF_STEP" ||
         name == "WF_OPERATION" || name == "WF_ATTEMPT";
}

// Letters, digits and '_', not starting with a digit: what shells and `${env.NAME}` accept.
bool IsVariableName(std::string_view name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0]))) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_';
  });
}

std::string WithoutNul(std::string text) {
  std::replace(text.begin(), text.end(), '\0', ' ');
  return text;
}

// Everything one run shares between the coroutine that waits for the program and the helpers
// that feed its stdin and drain its stdout and stderr. Lives as long as the longest of them.
struct Run {
  explicit Run(const asio::any_io_executor& executor)
      : input(executor),
        output(executor),
        errors(executor),
        exit_watch(executor),
        deadline(executor),
        joined(executor) {}
  // A run torn down before its end (its io_context destroyed mid-call) still leaves nothing
  // behind: the group is killed and the program reaped, which SIGKILL makes quick.
  ~Run() {
    if (!reaped && pid > 0) {
      ::kill(-pid, SIGKILL);
      while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
      }
    }
  }
  Run(const Run&) = delete;
  Run& operator=(const Run&) = delete;

  asio::local::stream_protocol::socket input;  // our end of the program's stdin
  asio::posix::stream_descriptor output;       // read end of its stdout
  asio::posix::stream_descriptor errors;       // read end of its stderr
  asio::posix::stream_descriptor exit_watch;   // its pidfd, readable once it has ended
  asio::steady_timer deadline;
  asio::steady_timer joined;  // cancelled when the last helper finishes

  pid_t pid = -1;
  bool reaped = false;
  bool timed_out = false;
  int helpers = 0;  // helpers still running

  std::string stdin_text;
  std::string out;
  bool out_overflow = false;
  std::string err;

  // Ends the run early: the whole process group is killed (while its leader is not yet reaped
  // its id cannot name another group) and our pipe ends are closed, which ends the helpers.
  void Abort() {
    if (!reaped && pid > 0) ::kill(-pid, SIGKILL);
    boost::system::error_code ignored;
    input.close(ignored);
    output.close(ignored);
    errors.close(ignored);
  }
};

asio::awaitable<void> FeedInput(std::shared_ptr<Run> run) {
  boost::system::error_code ec;
  // A program that exits without reading its stdin makes this fail (EPIPE): that is its choice.
  co_await asio::async_write(run->input, asio::buffer(run->stdin_text),
                             asio::redirect_error(asio::use_awaitable, ec));
  run->input.shutdown(asio::socket_base::shutdown_send, ec);
  run->input.close(ec);
}

// Drains `which` (1: stdout, 2: stderr) until end of file or until the run is aborted.
asio::awaitable<void> Drain(std::shared_ptr<Run> run, int which) {
  asio::posix::stream_descriptor& from = which == 1 ? run->output : run->errors;
  std::array<char, 16384> chunk;
  for (;;) {
    boost::system::error_code ec;
    std::size_t n = co_await from.async_read_some(asio::buffer(chunk),
                                                  asio::redirect_error(asio::use_awaitable, ec));
    if (which == 1) {
      if (run->out.size() + n > CommandAdapter::kMaxStdoutBytes) {
        run->out_overflow = true;
      } else {
        run->out.append(chunk.data(), n);
      }
    } else {
      run->err.append(chunk.data(), n);
      // Keep the tail: trim in large steps so that appending stays linear.
      if (run->err.size() > 2 * CommandAdapter::kMaxStderrBytes) {
        run->err.erase(0, run->err.size() - CommandAdapter::kMaxStderrBytes);
      }
    }
    if (ec) break;
  }
  boost::system::error_code ignored;
  from.close(ignored);
}

// Starts a helper on `executor`; the last one to finish wakes `run->joined`.
void StartHelper(const asio::any_io_executor& executor, std::shared_ptr<Run> run,
                 asio::awaitable<void> helper) {
  ++run->helpers;
  asio::co_spawn(executor, std::move(helper), [run](std::exception_ptr) {
    if (--run->helpers == 0) run->joined.cancel();
  });
}

std::string SignalName(int signal_number) {
  const char* abbreviation = ::sigabbrev_np(signal_number);
  return abbreviation ? std::string("SIG") + abbreviation
                      : "signal " + std::to_string(signal_number);
}

}  // namespace

bool CommandAdapter::InheritedByDefault(std::string_view name) {
  static constexpr std::string_view kNames[] = {"PATH", "HOME", "TMPDIR", "TZ", "LANG", "LANGUAGE"};
  if (std::find(std::begin(kNames), std::end(kNames), name) != std::end(kNames)) return true;
  return name.size() > 3 && name.substr(0, 3) == "LC_";
}

CommandAdapter::CommandAdapter(std::string department, Settings settings)
    : department_(std::move(department)), settings_(std::move(settings)) {
  auto named = [](const std::vector<std::string>& names, const std::string& name) {
    return std::find(names.begin(), names.end(), name) != names.end();
  };
  auto set_by_env = [&](const std::string& name) {
    return std::any_of(settings_.env.begin(), settings_.env.end(),
                       [&](const auto& entry) { return entry.first == name; });
  };
  for (char** entry = environ; entry && *entry; ++entry) {
    std::string text(*entry);
    std::string name = EnvName(text);
    if (IsCallVariable(name) || set_by_env(name)) continue;
    if (InheritedByDefault(name) || named(settings_.pass_env, name)) {
      base_environment_.push_back(std::move(text));
    }
  }
  for (const auto& [name, value] : settings_.env) base_environment_.push_back(name + "=" + value);
}

Result<std::unique_ptr<CommandAdapter>> CommandAdapter::Create(std::string department,
                                                               const nlohmann::json& settings) {
  const std::string where = "department '" + department + "'";
  if (!settings.is_object()) return Status::Invalid(where + ": settings must be a mapping");
  Settings parsed;
  for (const auto& [key, value] : settings.items()) {
    if (key == "command") {
      if (!value.is_array() || value.empty()) {
        return Status::Invalid(where +
                               ": `command` must be a non-empty list: the program and "
                               "its arguments, e.g. [bin/registry.sh, --strict]");
      }
      for (const auto& argument : value) {
        if (argument.is_string()) {
          parsed.argv.push_back(argument.get<std::string>());
        } else if (argument.is_number() || argument.is_boolean()) {
          parsed.argv.push_back(argument.dump());
        } else {
          return Status::Invalid(where + ": `command` holds " + argument.dump() +
                                 ", which is not text");
        }
        if (parsed.argv.back().find('\0') != std::string::npos) {
          return Status::Invalid(where + ": `command` holds a NUL character");
        }
      }
      if (parsed.argv.front().empty()) {
        return Status::Invalid(where + ": `command` names no program");
      }
    } else if (key == "timeout") {
      if (value.is_null()) continue;
      auto timeout = ParseDurationSetting(value, where + ": `timeout`");
      if (!timeout) return timeout.error();
      parsed.timeout = *timeout;
    } else if (key == "env") {
      if (value.is_null()) continue;
      if (!value.is_object()) return Status::Invalid(where + ": `env` must be a mapping");
      for (const auto& [name, setting] : value.items()) {
        std::string at = where + ": env." + name;
        bool valid = !name.empty() && name.find_first_of("=\0", 0, 2) == std::string::npos;
        if (!valid) return Status::Invalid(at + ": not an environment variable name");
        if (IsCallVariable(name)) {
          return Status::Invalid(at + ": the command adapter sets this variable itself");
        }
        std::string text;
        if (setting.is_string()) {
          text = setting.get<std::string>();
        } else if (setting.is_number() || setting.is_boolean()) {
          text = setting.dump();
        } else {
          return Status::Invalid(at + ": the value must be text");
        }
        auto substituted = SubstituteEnv(text, at);
        if (!substituted) return substituted.error();
        parsed.env.emplace_back(name, WithoutNul(std::move(substituted.value())));
      }
    } else if (key == "pass_env") {
      if (value.is_null()) continue;
      if (!value.is_array()) {
        return Status::Invalid(where +
                               ": `pass_env` must be a list of environment variable names, "
                               "e.g. [HTTPS_PROXY]");
      }
      for (const auto& item : value) {
        if (!item.is_string() || !IsVariableName(item.get<std::string>())) {
          return Status::Invalid(where + ": `pass_env` holds " + Excerpt(item.dump(), 100) +
                                 ", not an environment variable name (letters, digits, _)");
        }
        std::string name = item.get<std::string>();
        if (IsCallVariable(name)) {
          return Status::Invalid(where + ": pass_env." + name +
                                 ": the command adapter sets this variable itself");
        }
        parsed.pass_env.push_back(std::move(name));
      }
    } else if (key == "cwd") {
      if (value.is_null()) continue;
      if (!value.is_string() || value.get<std::string>().empty()) {
        return Status::Invalid(where + ": `cwd` must be a directory name");
      }
      auto substituted = SubstituteEnv(value.get<std::string>(), where + ": `cwd`");
      if (!substituted) return substituted.error();
      parsed.cwd = std::move(substituted.value());
    } else {
      return Status::Invalid(where + ": unknown command setting `" + key +
                             "` (known: command, timeout, env, pass_env, cwd)");
    }
  }
  if (parsed.argv.empty()) {
    return Status::Invalid(where + ": `command` is required: the program and its arguments");
  }
  for (const auto& entry : parsed.env) {
    const std::string& name = entry.first;
    if (std::find(parsed.pass_env.begin(), parsed.pass_env.end(), name) != parsed.pass_env.end()) {
      return Status::Invalid(where + ": " + name +
                             " is named in both `env` and `pass_env`: keep one");
    }
  }
  return std::make_unique<CommandAdapter>(std::move(department), std::move(parsed));
}

Status CommandAdapter::Validate(const StepCall& call) const {
  const std::string where = "department '" + department_ + "'";
  if (!call.call.is_null() && !call.call.is_object()) {
    return Status::Invalid(where + ": the call must be a mapping of fields");
  }
  if (call.call.is_object()) {
    auto it = call.call.find("operation");
    if (it != call.call.end() && !it->is_string()) {
      return Status::Invalid(where + ": `operation` must be text");
    }
  }
  return Status::Ok();
}

asio::awaitable<StepOutcome> CommandAdapter::Invoke(StepRequest request) {
  std::string label = CallLabel(department_, request.operation);
  try {
    co_return co_await RunProgram(std::move(request));
  } catch (const std::exception& e) {
    co_return StepOutcome::Retry(label + ": internal error in the command adapter: " + e.what());
  }
}

// g++ 12 at -O2 reports this coroutine's frame as freed by a mismatched operator delete: a false
// positive (Asio's awaitable_frame_base declares the matching operator new and delete).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
asio::awaitable<StepOutcome> CommandAdapter::RunProgram(StepRequest request) {
  const std::string label = CallLabel(department_, request.operation);
  const std::chrono::milliseconds limit = EffectiveTimeout(request.timeout, settings_.timeout);
  asio::any_io_executor executor = co_await asio::this_coro::executor;
  auto run = std::make_shared<Run>(executor);

  nlohmann::json call = {
      {"operation", request.operation},
      {"fields", request.fields.is_null() ? nlohmann::json::object() : request.fields},
      {"case", request.case_id},
      {"step", request.step},
      {"idempotency_key", request.idempotency_key},
      {"attempt", request.attempt}};
  run->stdin_text = call.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";

  std::vector<std::string> environment = base_environment_;
  environment.push_back("WF_IDEMPOTENCY_KEY=" + WithoutNul(request.idempotency_key));
  environment.push_back("WF_CASE=" + WithoutNul(request.case_id));
  environment.push_back("WF_STEP=" + WithoutNul(request.step));
  environment.push_back("WF_OPERATION=" + WithoutNul(request.operation));
  environment.push_back("WF_ATTEMPT=" + std::to_string(request.attempt));
  std::vector<char*> envp;
  for (auto& entry : environment) envp.push_back(entry.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_text = settings_.argv;
  std::vector<char*> argv;
  for (auto& argument : argv_text) argv.push_back(argument.data());
  argv.push_back(nullptr);

  auto system_failure = [&](const char* what) {
    return StepOutcome::Retry(label + ": " + what + ": " + std::strerror(errno));
  };

  // Our ends are FD_CLOEXEC; the child's ends become its 0, 1 and 2 through dup2, which clears
  // the flag on the copies only.
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
    co_return system_failure("socketpair");
  }
  Fd input_ours(pair[0]), input_theirs(pair[1]);
  if (::pipe2(pair, O_CLOEXEC) != 0) co_return system_failure("pipe");
  Fd output_ours(pair[0]), output_theirs(pair[1]);
  if (::pipe2(pair, O_CLOEXEC) != 0) co_return system_failure("pipe");
  Fd errors_ours(pair[0]), errors_theirs(pair[1]);
  for (Fd* fd :
       {&input_ours, &input_theirs, &output_ours, &output_theirs, &errors_ours, &errors_theirs}) {
    if (!LiftAboveStdio(fd)) co_return system_failure("fcntl");
  }

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, input_theirs.get(), 0);
  posix_spawn_file_actions_adddup2(&actions, output_theirs.get(), 1);
  posix_spawn_file_actions_adddup2(&actions, errors_theirs.get(), 2);
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  if (!settings_.cwd.empty()) posix_spawn_file_actions_addchdir_np(&actions, settings_.cwd.c_str());
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  posix_spawnattr_setflags(&attributes,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  posix_spawnattr_setpgroup(&attributes, 0);
  sigset_t signals;
  sigemptyset(&signals);
  posix_spawnattr_setsigmask(&attributes, &signals);
  for (int s : {SIGPIPE, SIGINT, SIGQUIT, SIGTERM, SIGHUP, SIGCHLD, SIGALRM, SIGUSR1, SIGUSR2}) {
    sigaddset(&signals, s);
  }
  posix_spawnattr_setsigdefault(&attributes, &signals);
  pid_t pid = -1;
  int spawned = ::posix_spawnp(&pid, argv[0], &actions, &attributes, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  if (spawned != 0) {
    std::string where = settings_.cwd.empty() ? "" : " in '" + settings_.cwd + "'";
    co_return StepOutcome::Failed(label + ": cannot run '" + settings_.argv.front() + "'" + where +
                                  ": " + std::strerror(spawned));
  }
  run->pid = pid;
  input_theirs.Reset();
  output_theirs.Reset();
  errors_theirs.Reset();

  boost::system::error_code ec;
  run->input.assign(asio::local::stream_protocol(), input_ours.Release(), ec);
  run->output.assign(output_ours.Release(), ec);
  run->errors.assign(errors_ours.Release(), ec);
  int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (pidfd >= 0) run->exit_watch.assign(pidfd, ec);

  run->deadline.expires_after(limit);
  run->deadline.async_wait([run](const boost::system::error_code& timer_ec) {
    if (timer_ec) return;
    run->timed_out = true;
    run->Abort();
  });
  StartHelper(executor, run, FeedInput(run));
  StartHelper(executor, run, Drain(run, 1));
  StartHelper(executor, run, Drain(run, 2));

  // Wait until the program has ended, without reaping it yet.
  if (run->exit_watch.is_open()) {
    co_await run->exit_watch.async_wait(asio::posix::descriptor_base::wait_read,
                                        asio::redirect_error(asio::use_awaitable, ec));
  }
  for (;;) {
    siginfo_t info{};
    int waited = ::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT);
    if (waited != 0 || info.si_pid == pid) break;  // ended (or not ours to wait for any more)
    asio::steady_timer tick(executor, kExitPollInterval);
    co_await tick.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  // What the program left running in its group goes with it; then reap it.
  ::kill(-pid, SIGKILL);
  int status = 0;
  pid_t reaped;
  do {
    reaped = ::waitpid(pid, &status, 0);
  } while (reaped < 0 && errno == EINTR);
  run->reaped = true;
  run->exit_watch.close(ec);

  // stdout and stderr reach end of file now that nobody holds them, unless something escaped
  // the process group with them: the deadline then closes them.
  while (run->helpers > 0) {
    run->joined.expires_at(asio::steady_timer::time_point::max());
    co_await run->joined.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  run->deadline.cancel();

  std::string errors_tail;
  if (!run->err.empty()) errors_tail = ": " + Excerpt(run->err, kStderrInMessage, true);
  if (errors_tail == ": ") errors_tail.clear();
  if (run->timed_out) {
    co_return StepOutcome::Retry(label + ": timed out after " + DescribeDuration(limit) +
                                 "; its process group was killed");
  }
  if (reaped != pid) {
    co_return StepOutcome::Retry(label + ": lost track of process " + std::to_string(pid) +
                                 " (was it reaped elsewhere?)");
  }
  if (WIFSIGNALED(status)) {
    int signal_number = WTERMSIG(status);
    co_return StepOutcome::Failed(label + ": killed by " + SignalName(signal_number) + errors_tail);
  }
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  if (code == kExitTempFail) {
    co_return StepOutcome::Retry(label + ": exited with status 75 (try again later)" + errors_tail);
  }
  if (code != 0) {
    co_return StepOutcome::Failed(label + ": exited with status " + std::to_string(code) +
                                  errors_tail);
  }
  if (run->out_overflow) {
    co_return StepOutcome::Failed(label + ": wrote more than " + std::to_string(kMaxStdoutBytes) +
                                  " bytes on stdout");
  }
  // The bounds before any DOM exists (see http.cpp): over them, a permanent failure.
  if (Status bounded = workflows::CheckJsonText(run->out); !bounded.ok()) {
    co_return StepOutcome::Failed(label + ": exited 0 with " + bounded.message() + " on stdout");
  }
  nlohmann::json result = nlohmann::json::parse(run->out, nullptr, false);
  if (result.is_discarded() || !result.is_object()) {
    std::string shown = Excerpt(run->out, 200);
    co_return StepOutcome::Failed(label + ": exited 0 but its stdout is not a JSON object" +
                                  (shown.empty() ? std::string(" (it was empty)") : ": " + shown));
  }
  co_return StepOutcome::Done(std::move(result));
}
#pragma GCC diagnostic pop

}  // namespace wf::adapters
