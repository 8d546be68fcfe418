#include "examples/mock-agency/callbacks.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <set>
#include <string>
#include <vector>

extern char** environ;

namespace wf::mock {

struct CallbackRunner::State {
  State(asio::io_context& io, std::function<void(bool)> exit_handler, bool is_quiet)
      : children(io, SIGCHLD), on_exit(std::move(exit_handler)), quiet(is_quiet) {}

  asio::signal_set children;
  std::function<void(bool)> on_exit;
  bool quiet;
  std::mutex mutex;  // guards running, and spawning against reaping
  std::set<pid_t> running;
};

namespace {

// Reaps every exited child each time SIGCHLD arrives. The mock starts no other children.
void WatchChildren(std::shared_ptr<CallbackRunner::State> state) {
  state->children.async_wait([state](const boost::system::error_code& ec, int) {
    if (ec) return;
    int status = 0;
    pid_t pid;
    std::vector<bool> exits;
    {
      std::lock_guard lock(state->mutex);
      while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        if (state->running.erase(pid) == 0) continue;
        const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
        if (!ok && !state->quiet) {
          std::fprintf(stderr, "wf-mock-agency: callback %d failed (status %d)\n",
                       static_cast<int>(pid), status);
        }
        exits.push_back(ok);
      }
    }
    for (bool ok : exits) state->on_exit(ok);
    WatchChildren(state);
  });
}

void Spawn(const std::shared_ptr<CallbackRunner::State>& state, const Callback& callback,
           asio::any_io_executor executor) {
  if (callback.argv.empty()) return;
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) {
    std::fprintf(stderr, "wf-mock-agency: callback: pipe: %s\n", std::strerror(errno));
    state->on_exit(false);
    return;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[0], STDIN_FILENO);
  // The mock ignores SIGPIPE; the command should not inherit that.
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  sigset_t defaults;
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  sigaddset(&defaults, SIGCHLD);
  posix_spawnattr_setsigdefault(&attributes, &defaults);
  sigset_t no_mask;
  sigemptyset(&no_mask);
  posix_spawnattr_setsigmask(&attributes, &no_mask);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);

  std::vector<char*> argv;
  for (const std::string& word : callback.argv) argv.push_back(const_cast<char*>(word.c_str()));
  argv.push_back(nullptr);
  pid_t pid = 0;
  std::unique_lock lock(state->mutex);
  const int error = posix_spawnp(&pid, argv[0], &actions, &attributes, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  close(pipe_fds[0]);
  if (error != 0) {
    lock.unlock();
    close(pipe_fds[1]);
    std::fprintf(stderr, "wf-mock-agency: callback %s: %s\n", argv[0], std::strerror(error));
    state->on_exit(false);
    return;
  }
  state->running.insert(pid);
  lock.unlock();
  if (!state->quiet) {
    std::fprintf(stderr, "wf-mock-agency: callback started (pid %d): %s\n", static_cast<int>(pid),
                 argv[0]);
  }
  auto input = std::make_shared<std::string>(callback.input);
  auto pipe = std::make_shared<asio::posix::stream_descriptor>(executor, pipe_fds[1]);
  // A command that exits without reading its input makes the write fail (EPIPE); that is its
  // business, its exit status says how it went.
  asio::async_write(*pipe, asio::buffer(*input),
                    [pipe, input](const boost::system::error_code&, size_t) { pipe->close(); });
}

}  // namespace

CallbackRunner::CallbackRunner(asio::io_context& io, std::function<void(bool)> on_exit, bool quiet)
    : state_(std::make_shared<State>(io, std::move(on_exit), quiet)) {
  WatchChildren(state_);
}

CallbackRunner::~CallbackRunner() {
  boost::system::error_code ignored;
  state_->children.cancel(ignored);
}

void CallbackRunner::Run(Callback callback) {
  auto executor = state_->children.get_executor();
  auto timer = std::make_shared<asio::steady_timer>(executor);
  timer->expires_after(std::chrono::milliseconds(callback.delay_ms));
  timer->async_wait([state = state_, timer, executor,
                     callback = std::move(callback)](const boost::system::error_code& ec) {
    if (!ec) Spawn(state, callback, executor);
  });
}

}  // namespace wf::mock
