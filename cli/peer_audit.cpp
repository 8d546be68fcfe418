// wf audit verify --peer NAME: checks with another deployment (a department of adapter `wf`)
// that both histories agree on every exchange between them (DESIGN.md, "Federation").
//
// Our side of an exchange: the `step.accepted` event whose receipt names the peer and its case,
// and the `signal.received` event that took the peer's answer (its `data` carries the peer's
// case and the hash of the peer's last event about it). The peer's side, fetched from its
// `wf serve` (GET /v1/cases/{id}/history, as our deployment's certificate): its chain must
// verify, its `federation.requested` must name our case and step, the hash our answer carries
// must be an event of its chain, and its `federation.answered` must carry the hash of the event
// that took the answer here.
#include <chrono>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <nlohmann/json.hpp>

#include "adapters/asio.hpp"
#include "adapters/http_url.hpp"
#include "adapters/settings.hpp"
#include "adapters/tls_client.hpp"
#include "cli/command.hpp"
#include "cli/session.hpp"
#include "engine/history.hpp"
#include "engine/history_action.hpp"
#include "workflows/i18n.hpp"

namespace wf::cli {

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using nlohmann::json;

// One exchange as our history tells it.
struct Exchange {
  std::string our_case;
  std::string step;
  std::string peer_case;
  std::string answer_hash;  // our signal.received event; empty while unanswered
  std::string peer_hash;    // the hash the answer carried; empty while unanswered
};

// GET `target` from the peer's wf serve at `base`; the parsed JSON body, or why not.
Result<json> Get(const std::string& base, const std::string& target,
                 const std::optional<engine::Identity>& identity) {
  auto url = adapters::http_url::ParseUrl(base, "the peer's url");
  if (!url) return Status::Usage(url.error().message());
  try {
    asio::io_context io;
    tcp::resolver resolver(io);
    auto endpoints = resolver.resolve(url->host, url->port);
    http::request<http::string_body> request{http::verb::get, url->base_path + target, 11};
    request.set(http::field::host, url->host_header);
    request.set(http::field::accept, "application/json");
    http::response<http::string_body> response;
    beast::flat_buffer buffer;
    if (url->tls) {
      if (!identity) {
        return Status::Usage(
            Tr("the peer speaks https:// but the deployment config has no "
               "`identity` to present to it"));
      }
      ssl::context context(ssl::context::tls_client);
      context.load_verify_file(identity->ca);
      context.use_certificate_chain_file(identity->cert);
      context.use_private_key_file(identity->key, ssl::context::pem);
      beast::ssl_stream<beast::tcp_stream> stream(io, context);
      std::string refused;
      boost::system::error_code ec;
      adapters::PrepareTlsClient(stream, url->host, true, &refused, ec);
      beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(30));
      beast::get_lowest_layer(stream).connect(endpoints);
      stream.handshake(ssl::stream_base::client);
      http::write(stream, request);
      http::read(stream, buffer, response);
    } else {
      beast::tcp_stream stream(io);
      stream.expires_after(std::chrono::seconds(30));
      stream.connect(endpoints);
      http::write(stream, request);
      http::read(stream, buffer, response);
    }
    json body = json::parse(response.body(), nullptr, false);
    if (response.result_int() != 200) {
      std::string said = body.is_object() ? body.value("message", std::string()) : std::string();
      return Status::Unavailable(TrFormat("the peer answered {0} to GET {1}: {2}",
                                          std::to_string(response.result_int()), target, said));
    }
    if (body.is_discarded()) return Status::Unavailable(Tr("the peer's answer is not JSON"));
    return body;
  } catch (const std::exception& e) {
    return Status::Unavailable(TrFormat("cannot reach the peer at {0}: {1}", base, e.what()));
  }
}

// Our side of every exchange with `peer` (of one case, or all).
Result<std::vector<Exchange>> OurExchanges(engine::Store& store, const std::string& peer,
                                           const std::string& case_id) {
  std::map<std::pair<std::string, std::string>, Exchange> found;
  std::vector<std::pair<std::string, std::string>> order;
  std::optional<std::string> only;
  if (!case_id.empty()) only = case_id;
  Status status = store.ForEachHistory(only, std::nullopt, [&](const engine::HistoryEvent& e) {
    json details = json::parse(e.details, nullptr, false);
    if (!details.is_object()) return Status::Ok();
    auto key = std::make_pair(e.case_id, e.step);
    if (e.action == engine::history_action::kStepAccepted && details.contains("receipt")) {
      const json& receipt = details["receipt"];
      if (receipt.is_object() && receipt.value("deployment", "") == peer) {
        if (!found.count(key)) order.push_back(key);
        Exchange& x = found[key];
        x.our_case = e.case_id;
        x.step = e.step;
        x.peer_case = receipt.value("case", "");
      }
    } else if (e.action == engine::history_action::kSignalReceived && found.count(key)) {
      const json data = details.value("data", json::object());
      Exchange& x = found[key];
      if (data.is_object() && data.value("case", "") == x.peer_case) {
        x.answer_hash = e.hash;
        x.peer_hash = data.value("hash", "");
      }
    }
    return Status::Ok();
  });
  if (!status.ok()) return status;
  std::vector<Exchange> out;
  for (const auto& key : order) out.push_back(found[key]);
  return out;
}

// What disagrees between our side `x` and the peer's `history`; empty when they agree.
std::vector<std::string> Compare(const Exchange& x, const json& history) {
  std::vector<std::string> problems;
  std::vector<engine::HistoryEvent> events;
  bool has_peer_hash = false, requested = false, answered = x.answer_hash.empty();
  for (const json& item : history.value("events", json::array())) {
    engine::HistoryEvent e;
    e.case_id = x.peer_case;
    e.seq = item.value("seq", std::int64_t{0});
    e.at = item.value("at", "");
    e.actor = item.value("actor", "");
    e.action = item.value("action", "");
    e.step = item.value("step", "");
    const json details = item.value("details", json::object());
    e.details = details.is_string() ? details.get<std::string>() : details.dump();
    e.prev_hash = item.value("prev_hash", "");
    e.hash = item.value("hash", "");
    events.push_back(e);
    if (e.hash == x.peer_hash) has_peer_hash = true;
    if (e.action == engine::history_action::kFederationRequested && details.is_object() &&
        details.value("case", "") == x.our_case && details.value("step", "") == x.step) {
      requested = true;
    }
    if (e.action == engine::history_action::kFederationAnswered && details.is_object() &&
        details.value("hash", "") == x.answer_hash) {
      answered = true;
    }
  }
  if (auto broken = engine::VerifyChain(events)) {
    problems.push_back(TrFormat("the peer's chain does not verify: {0}", broken->Describe()));
  }
  if (!requested) {
    problems.push_back(
        TrFormat("the peer's case does not record our request ({0} step {1})", x.our_case, x.step));
  }
  if (!x.peer_hash.empty() && !has_peer_hash) {
    problems.push_back(TrFormat("the peer's chain has no event {0}, which its answer named",
                                x.peer_hash.substr(0, 16)));
  }
  if (!answered) {
    problems.push_back(TrFormat("the peer does not record that our event {0} took its answer",
                                x.answer_hash.substr(0, 16)));
  }
  return problems;
}

}  // namespace

int VerifyPeer(const GlobalOptions& globals, const std::string& peer, const std::string& case_id) {
  auto session = OpenSession(globals, 2);
  if (!session) return Fail(session.error());
  const engine::Deployment& deployment = (*session)->deployment;
  auto department = deployment.departments.find(peer);
  if (department == deployment.departments.end() || department->second.adapter != "wf") {
    return Fail(Status::Usage(
        TrFormat("--peer {0}: the deployment config has no department {0} of adapter wf", peer)));
  }
  auto base = adapters::SubstituteEnv(department->second.settings.value("url", ""),
                                      "department '" + peer + "': url");
  if (!base) return Fail(base.error());
  auto exchanges = OurExchanges(*(*session)->store, peer, case_id);
  if (!exchanges) return Fail(exchanges.error());
  json report = json::array();
  int disagreeing = 0;
  for (const Exchange& x : *exchanges) {
    json line = {{"case", x.our_case},
                 {"step", x.step},
                 {"peer", peer},
                 {"peer_case", x.peer_case},
                 {"answered", !x.answer_hash.empty()}};
    auto history = Get(*base, "/v1/cases/" + x.peer_case + "/history", deployment.identity);
    if (!history) return Fail(history.error());
    std::vector<std::string> problems = Compare(x, *history);
    line["agree"] = problems.empty();
    line["problems"] = problems;
    report.push_back(line);
    if (!problems.empty()) ++disagreeing;
    if (!globals.json) {
      std::cout << (problems.empty() ? Tr("agree") : Tr("DISAGREE")) << "  " << x.our_case << ' '
                << x.step << "  <->  " << peer << ' ' << x.peer_case
                << (x.answer_hash.empty() ? std::string(" ") + Tr("(not answered yet)")
                                          : std::string())
                << '\n';
      for (const auto& problem : problems) std::cout << "    " << problem << '\n';
    }
  }
  if (globals.json) {
    std::cout << json{{"ok", disagreeing == 0}, {"peer", peer}, {"exchanges", report}}.dump(2)
              << '\n';
  } else {
    std::cout << TrFormat("{0} exchanges with {1}, {2} disagree", std::to_string(exchanges->size()),
                          peer, std::to_string(disagreeing))
              << '\n';
  }
  if (disagreeing > 0) {
    return Fail(Status::HistoryBroken(
        TrFormat("{0} exchanges with {1} disagree", std::to_string(disagreeing), peer)));
  }
  return 0;
}

}  // namespace wf::cli
