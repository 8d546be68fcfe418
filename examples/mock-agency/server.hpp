#pragma once

// The HTTP/1.1 front of the mock agency: accepts connections, reads requests (keep-alive), asks
// the Agency what to answer and carries the plan out with timers, so a slow or hanging answer
// never holds up another connection. One coroutine per connection, each on its own strand.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "adapters/asio.hpp"
#include "examples/mock-agency/agency.hpp"
#include "examples/mock-agency/callbacks.hpp"

namespace wf::mock {

class Server {
 public:
  // `agency` and `callbacks` must outlive the io_context's run. `quiet` drops the request log.
  Server(asio::io_context& io, Agency& agency, CallbackRunner& callbacks, bool quiet);

  // Binds `host`:`port` (0 picks a free port) and listens. Returns an error message on failure.
  std::optional<std::string> Listen(const std::string& host, uint16_t port);
  // The port bound by Listen.
  uint16_t port() const;
  // Starts accepting. Connections are served until the io_context stops or Stop is called.
  void Start();
  // Stops accepting new connections.
  void Stop();

 private:
  asio::io_context& io_;
  Agency& agency_;
  CallbackRunner& callbacks_;
  bool quiet_;
  asio::ip::tcp::acceptor acceptor_;
};

}  // namespace wf::mock
