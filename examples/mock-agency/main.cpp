// wf-mock-agency: plays the department systems of the example procedures over HTTP/1.1.
// See README.md for the departments, the ledger, the fault switches and the flags.

#include <signal.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "adapters/asio.hpp"
#include "examples/mock-agency/agency.hpp"
#include "examples/mock-agency/callbacks.hpp"
#include "examples/mock-agency/departments.hpp"
#include "examples/mock-agency/server.hpp"

namespace {

using nlohmann::json;

constexpr const char* kUsage = R"(usage: wf-mock-agency [options]

  --host ADDRESS          address to listen on (default 127.0.0.1)
  --port N                port (default 8089; 0 picks a free port and prints it)
  --port-file FILE        write the port to FILE once listening
  --threads N             I/O threads (default 1)
  --seed N                seed of failure_rate's draws (default 1)
  --quiet                 no request log on stderr
  --callback "CMD ARGS"   run for each accepted (202) call with the result JSON on stdin;
                          placeholders {case} {step} {key} {department} {operation};
                          split into words on spaces (quotes group), run without a shell
fault switches for every department (see also POST /_faults):
  --latency-ms N  --failure-rate R  --fail-first N  --accept  --callback-delay-ms N
  --hang  --status CODE  --max-body-bytes N
  --fault [DEPARTMENT:]NAME=VALUE   any switch, for one department or all, e.g.
                          --fault payment-gateway:accept=true --fault dolisa:fail_first=2
)";

struct Flags {
  std::string host = "127.0.0.1";
  int port = 8089;
  std::string port_file;
  int threads = 1;
  bool quiet = false;
  wf::mock::AgencyOptions agency;
};

int UsageError(const std::string& message) {
  std::fprintf(stderr, "wf-mock-agency: %s\n%s", message.c_str(), kUsage);
  return 2;
}

// Splits a command template into words: spaces separate, '...' and "..." group.
std::vector<std::string> SplitWords(const std::string& text) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;
  char quote = 0;
  for (char c : text) {
    if (quote != 0) {
      if (c == quote) {
        quote = 0;
      } else {
        word += c;
      }
    } else if (c == '\'' || c == '"') {
      quote = c;
      in_word = true;
    } else if (c == ' ' || c == '\t') {
      if (in_word) words.push_back(word);
      word.clear();
      in_word = false;
    } else {
      word += c;
      in_word = true;
    }
  }
  if (in_word) words.push_back(word);
  return words;
}

// Applies "[DEPARTMENT:]NAME=VALUE"; VALUE is read as JSON (true, 20, 0.5).
std::optional<std::string> ApplyFault(const std::string& spec, Flags& flags) {
  const size_t equals = spec.find('=');
  if (equals == std::string::npos) return "--fault wants [DEPARTMENT:]NAME=VALUE, got " + spec;
  std::string name = spec.substr(0, equals);
  std::string department;
  if (const size_t colon = name.find(':'); colon != std::string::npos) {
    department = name.substr(0, colon);
    name = name.substr(colon + 1);
    if (!wf::mock::IsKnownDepartment(department)) return "no department '" + department + "'";
  }
  json value = json::parse(spec.substr(equals + 1), nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded()) return "bad value in --fault " + spec;
  wf::mock::Faults& faults =
      department.empty() ? flags.agency.faults : flags.agency.departments[department];
  return wf::mock::ApplyFaultPatch(json{{name, value}}, faults);
}

std::optional<std::string> ParseInt(const std::string& text, long long min, long long max,
                                    long long& out) {
  char* end = nullptr;
  errno = 0;
  const long long value = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || errno != 0 || value < min || value > max) {
    return "expected a whole number from " + std::to_string(min) + " to " + std::to_string(max) +
           ", got '" + text + "'";
  }
  out = value;
  return std::nullopt;
}

// Parses argv into `flags`; returns an error message for a usage error.
std::optional<std::string> ParseFlags(int argc, char** argv, Flags& flags, bool& help) {
  std::vector<std::string> args(argv + 1, argv + argc);
  for (size_t i = 0; i < args.size(); ++i) {
    std::string flag = args[i];
    std::optional<std::string> inline_value;
    if (const size_t equals = flag.find('=');
        flag.starts_with("--") && equals != std::string::npos) {
      inline_value = flag.substr(equals + 1);
      flag = flag.substr(0, equals);
    }
    auto value = [&](std::string& out) -> std::optional<std::string> {
      if (inline_value) {
        out = *inline_value;
      } else if (i + 1 < args.size()) {
        out = args[++i];
      } else {
        return flag + " needs a value";
      }
      return std::nullopt;
    };
    auto number = [&](long long min, long long max, long long& out) -> std::optional<std::string> {
      std::string text;
      if (auto error = value(text)) return error;
      if (auto error = ParseInt(text, min, max, out)) return flag + ": " + *error;
      return std::nullopt;
    };
    // A global fault switch given as its own flag.
    auto fault = [&](const char* name, bool boolean) -> std::optional<std::string> {
      std::string text = "true";
      if (!boolean) {
        if (auto error = value(text)) return error;
      }
      return ApplyFault(std::string(name) + "=" + text, flags);
    };
    std::optional<std::string> error;
    long long n = 0;
    std::string text;
    if (flag == "--help" || flag == "-h") {
      help = true;
    } else if (flag == "--host") {
      error = value(flags.host);
    } else if (flag == "--port") {
      if (!(error = number(0, 65535, n))) flags.port = static_cast<int>(n);
    } else if (flag == "--port-file") {
      error = value(flags.port_file);
    } else if (flag == "--threads") {
      if (!(error = number(1, 64, n))) flags.threads = static_cast<int>(n);
    } else if (flag == "--seed") {
      if (!(error = number(0, INT64_MAX, n))) flags.agency.seed = static_cast<uint64_t>(n);
    } else if (flag == "--quiet") {
      flags.quiet = true;
    } else if (flag == "--callback") {
      if (!(error = value(text))) {
        flags.agency.callback = SplitWords(text);
        if (flags.agency.callback.empty()) error = "--callback needs a command";
      }
    } else if (flag == "--fault") {
      if (!(error = value(text))) error = ApplyFault(text, flags);
    } else if (flag == "--latency-ms") {
      error = fault("latency_ms", false);
    } else if (flag == "--failure-rate") {
      error = fault("failure_rate", false);
    } else if (flag == "--fail-first") {
      error = fault("fail_first", false);
    } else if (flag == "--accept") {
      error = fault("accept", true);
    } else if (flag == "--callback-delay-ms") {
      error = fault("callback_delay_ms", false);
    } else if (flag == "--hang") {
      error = fault("hang", true);
    } else if (flag == "--status") {
      error = fault("status", false);
    } else if (flag == "--max-body-bytes") {
      error = fault("max_body_bytes", false);
    } else {
      error = "unknown option " + flag;
    }
    if (error) return error;
  }
  return std::nullopt;
}

bool WritePortFile(const std::string& path, unsigned port) {
  // Written whole under another name and renamed, so a reader never sees half a number.
  const std::string partial = path + ".partial";
  {
    std::ofstream out(partial, std::ios::trunc);
    out << port << '\n';
    if (!out.flush()) return false;
  }
  return std::rename(partial.c_str(), path.c_str()) == 0;
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  bool help = false;
  if (auto error = ParseFlags(argc, argv, flags, help)) return UsageError(*error);
  if (help) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  // A client that goes away mid-answer, or a callback that does not read its input, must not
  // kill the server.
  signal(SIGPIPE, SIG_IGN);

  asio::io_context io(flags.threads);
  wf::mock::Agency agency(flags.agency);
  wf::mock::CallbackRunner callbacks(
      io, [&agency](bool succeeded) { agency.RecordCallback(succeeded); }, flags.quiet);
  wf::mock::Server server(io, agency, callbacks, flags.quiet);
  if (auto error = server.Listen(flags.host, static_cast<uint16_t>(flags.port))) {
    std::fprintf(stderr, "wf-mock-agency: %s\n", error->c_str());
    return 1;
  }
  if (!flags.port_file.empty() && !WritePortFile(flags.port_file, server.port())) {
    std::fprintf(stderr, "wf-mock-agency: cannot write %s\n", flags.port_file.c_str());
    return 1;
  }
  asio::signal_set stop(io, SIGINT, SIGTERM);
  stop.async_wait([&](const boost::system::error_code& ec, int) {
    if (ec) return;
    server.Stop();
    io.stop();
  });
  server.Start();
  std::printf("wf-mock-agency listening on %s:%u\n", flags.host.c_str(),
              static_cast<unsigned>(server.port()));
  std::fflush(stdout);

  std::vector<std::thread> threads;
  for (int i = 1; i < flags.threads; ++i) threads.emplace_back([&io] { io.run(); });
  io.run();
  for (std::thread& thread : threads) thread.join();
  return 0;
}
