#pragma once

// Runs the accept switch's callback commands: after a delay, spawns the command (no shell),
// writes the result JSON to its stdin, and reaps it when it exits (through SIGCHLD on the
// io_context, so nothing blocks). All members run on the io_context's executor.

#include <functional>
#include <memory>

#include "adapters/asio.hpp"
#include "examples/mock-agency/agency.hpp"

namespace wf::mock {

class CallbackRunner {
 public:
  // `on_exit` hears whether each command exited with status 0. Must be constructed before the
  // first Run, on the io_context that will run the commands; lives as long as it.
  CallbackRunner(asio::io_context& io, std::function<void(bool)> on_exit, bool quiet);
  ~CallbackRunner();
  CallbackRunner(const CallbackRunner&) = delete;
  CallbackRunner& operator=(const CallbackRunner&) = delete;

  // Starts `callback.argv` after `callback.delay_ms`. A command that cannot start counts as
  // failed and is logged on stderr.
  void Run(Callback callback);

  struct State;  // defined in callbacks.cpp; shared with the pending handlers

 private:
  std::shared_ptr<State> state_;
};

}  // namespace wf::mock
