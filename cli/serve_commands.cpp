// wf serve: the HTTP API (server/server.hpp) over the session's runtime, until SIGINT or SIGTERM.
#include <pthread.h>
#include <signal.h>

#include <iostream>
#include <memory>
#include <thread>

#include "cli/command.hpp"
#include "cli/session.hpp"
#include "server/server.hpp"
#include "workflows/duration.hpp"
#include "workflows/i18n.hpp"

namespace wf::cli {

namespace {

struct ServeFlags {
  std::string listen = "127.0.0.1:8080";
  std::size_t max_body = 1 << 20;
  int max_connections = 256;
  std::string header_timeout = "10s";
  std::string body_timeout = "30s";
  int workers = 2;
};

Result<std::chrono::milliseconds> Milliseconds(const std::string& text, const char* option) {
  std::string error;
  auto parsed = workflows::ParseDuration(text, &error);
  if (!parsed || parsed->IsWorkingDays() || parsed->amount <= 0) {
    if (error.empty()) {
      return Status::Usage(
          TrFormat("{0} {1}: give a positive duration such as 10s or 1m", option, text));
    }
    return Status::Usage(
        TrFormat("{0} {1}: give a positive duration such as 10s or 1m ({2})", option, text, error));
  }
  return std::chrono::milliseconds(parsed->ApproximateSeconds() * 1000);
}

int Serve(const GlobalOptions& globals, const ServeFlags& flags) {
  auto listen = server::ParseListen(flags.listen);
  if (!listen) return Fail(listen.error());
  server::ServeOptions options;
  options.host = listen->first;
  options.port = listen->second;
  options.limits.max_body_bytes = flags.max_body;
  options.limits.max_connections = flags.max_connections;
  options.limits.workers = flags.workers;
  auto header_timeout = Milliseconds(flags.header_timeout, "--header-timeout");
  if (!header_timeout) return Fail(header_timeout.error());
  auto body_timeout = Milliseconds(flags.body_timeout, "--body-timeout");
  if (!body_timeout) return Fail(body_timeout.error());
  options.limits.header_timeout = *header_timeout;
  options.limits.body_timeout = *body_timeout;

  // SIGINT and SIGTERM are taken by this thread alone (sigwait below); the server's threads,
  // started after, inherit the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto session = OpenSession(globals, flags.workers + 1);
  if (!session) return Fail(session.error());
  server::Server server(*(*session)->runtime, options);
  if (Status listening = server.Listen(); !listening.ok()) return Fail(listening);
  std::cout << TrFormat("wf serve: listening on {0}://{1}:{2}", server.tls() ? "https" : "http",
                        options.host, server.port())
            << std::endl;
  // The HTTP API answers machines: its messages stay English whatever the operator reads.
  const std::string stopped = Tr("wf serve: stopped");
  i18n::SetLanguage(Language::kEnglish);
  std::thread runner([&server] { server.Run(); });
  int received = 0;
  sigwait(&signals, &received);
  server.Stop();
  runner.join();
  std::cout << stopped << std::endl;
  return 0;
}

}  // namespace

void AddServeCommands(CLI::App& app, const GlobalOptions& globals, CommandAction* selected) {
  auto* cmd = app.add_subcommand("serve", Tr("serve the HTTP API (README: The HTTP API)"));
  auto flags = std::make_shared<ServeFlags>();
  cmd->add_option("--listen", flags->listen, Tr("HOST:PORT to listen on (port 0: a free one)"))
      ->capture_default_str();
  cmd->add_option("--max-body", flags->max_body, Tr("largest request body in bytes (413 beyond)"))
      ->capture_default_str();
  cmd->add_option("--max-connections", flags->max_connections,
                  Tr("connections served at once (503 beyond)"))
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  cmd->add_option("--header-timeout", flags->header_timeout,
                  Tr("time for a request's header to arrive (408 after)"))
      ->capture_default_str();
  cmd->add_option("--body-timeout", flags->body_timeout,
                  Tr("time for a request's body to arrive (408 after)"))
      ->capture_default_str();
  cmd->add_option("--workers", flags->workers,
                  Tr("start transactions at once (one more thread takes requests in)"))
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  cmd->callback([&globals, flags, selected] {
    *selected = [&globals, flags] { return Serve(globals, *flags); };
  });
}

}  // namespace wf::cli
