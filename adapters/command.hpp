#pragma once

// The `command` adapter (DESIGN.md, "Adapter wire protocols"): one department system reached by
// running a program for each call.
//
// Department settings (engine::Department::settings):
//   command: [examples/bin/registry.sh, --mode, strict]   # required: argv, no shell involved
//   timeout: 10s           # optional cap on every call's time (the step's timeout otherwise)
//   env: {REGISTRY_TOKEN: "${env.REGISTRY_TOKEN}"}        # set in the program's environment
//   pass_env: [HTTPS_PROXY, JAVA_HOME]   # optional: the engine's own values of these, when set
//   cwd: /srv/registry     # optional working directory of the program
// Unknown keys are refused, and so is a name in both `env` and `pass_env`. `${env.NAME}` in `env`
// values and in `cwd` is replaced from the environment once, when the adapter is created, and
// `pass_env` is read then too (a name the engine's environment lacks is skipped, as systemd's
// PassEnvironment= does; write it in `env` as `${env.NAME}` to make it required); argv is taken
// literally.
//
// Each attempt runs argv[0] (looked up in PATH when it has no '/'; a relative path is taken from
// `cwd` when given) with posix_spawn, never through a shell, in a new process group, with:
//   stdin   one JSON object, then end of file:
//           {"operation": "get_citizen", "fields": {...}, "case": "<case id>",
//            "step": "<step id>", "idempotency_key": "<case>/<step>/<activation>",
//            "attempt": 1}
//   env     a scrubbed environment, never the engine's whole one (which holds WF_DB, other
//           departments' tokens, PG* passwords): only the engine's PATH, HOME, TMPDIR, TZ, LANG,
//           LANGUAGE and LC_* (what a program needs to find its tools, write temporary files and
//           read text and times as the engine does; none is a secret: HOME is the passwd entry's
//           anyway), then the `pass_env` names, then `env` from the settings, then
//           WF_IDEMPOTENCY_KEY, WF_CASE, WF_STEP, WF_OPERATION and WF_ATTEMPT for this call.
//           Not inherited unless named: USER, SHELL, TERM, PWD (wrong once `cwd` applies), LD_*,
//           proxies (their URLs may hold credentials) and everything else.
//   stdout  the answer: at most 1 MiB is kept
//   stderr  for messages: the last 64 KiB are kept, the last 2,000 bytes go into the message
// No other file descriptor of the engine is inherited, and signal dispositions and mask are
// reset to their defaults.
//
// The outcome:
//   exit 0 with a JSON object on stdout -> kDone, that object is the result
//   exit 0 with anything else           -> kFailed ("... is not a JSON object")
//   exit 75 (EX_TEMPFAIL)               -> kRetry, with stderr's tail
//   any other exit, or killed by a signal -> kFailed, with the status and stderr's tail
//   past the timeout                    -> the whole process group gets SIGKILL; kRetry
//                                          ("timed out after 10s")
//   the program cannot be started       -> kFailed ("cannot run 'x': No such file ...")
// Every message starts with "<department> <operation>: ". When the program exits, whatever it
// left running in its process group is killed too: a call leaves no processes behind.
//
// How it waits: all pipe I/O is asynchronous on the executor of the coroutine that awaits Invoke
// (stdin is a Unix socket pair so that a program that never reads it cannot raise SIGPIPE in
// the engine). The exit is noticed through a pidfd (Linux 5.3+) made readable when the program
// ends; where pidfd_open is missing, waitid(WNOHANG | WNOWAIT) is polled every 10 ms on a timer.
// The I/O thread never blocks. The program is reaped with waitpid on its own pid, so nothing in
// the process may reap children with waitpid(-1) or set SIGCHLD to SIG_IGN.
//
// Invoke may be called concurrently; each call's I/O objects are only touched from its own
// executor: run that executor on one thread (as the engine does) or make it a strand.

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "adapters/adapter.hpp"
#include "workflows/status.hpp"

namespace wf::adapters {

class CommandAdapter final : public Adapter {
 public:
  // What Create reads from the department settings.
  struct Settings {
    std::vector<std::string> argv;
    std::optional<std::chrono::milliseconds> timeout;
    std::vector<std::pair<std::string, std::string>> env;  // substituted already
    std::vector<std::string> pass_env;                     // names, read when constructed
    std::string cwd;                                       // empty: the engine's
  };

  // Reads `settings` of department `department`. kInvalid naming the department and the key for
  // a missing or empty `command`, an argument that is not text, a bad timeout, env, pass_env or
  // cwd, or an unset environment variable in `env` or `cwd`. Never throws; starts nothing.
  static Result<std::unique_ptr<CommandAdapter>> Create(std::string department,
                                                        const nlohmann::json& settings);
  // Builds the programs' environment from the process environment as it is now (see above).
  CommandAdapter(std::string department, Settings settings);

  // True for the names a program inherits without `pass_env`: PATH, HOME, TMPDIR, TZ, LANG,
  // LANGUAGE and LC_*.
  static bool InheritedByDefault(std::string_view name);

  // Checks that the call is a mapping whose `operation`, if present, is text. No I/O.
  Status Validate(const StepCall& call) const override;
  // One run of the program as described above. Never throws.
  asio::awaitable<StepOutcome> Invoke(StepRequest request) override;

  // The largest answer kept from stdout and the tail kept from stderr, in bytes.
  static constexpr std::size_t kMaxStdoutBytes = 1 << 20;
  static constexpr std::size_t kMaxStderrBytes = 64 << 10;

 private:
  asio::awaitable<StepOutcome> RunProgram(StepRequest request);

  std::string department_;
  Settings settings_;
  // The environment every run starts from: the allowed and passed part of the engine's, then
  // `env`; never a per-call WF_* variable.
  std::vector<std::string> base_environment_;
};

}  // namespace wf::adapters
