#include "engine/state_text.hpp"

#include <array>
#include <charconv>
#include <cstdint>

#include "workflows/json_text.hpp"

namespace wf::engine {

namespace {

// Members in the order nlohmann's sorted objects write them.
class Writer {
 public:
  explicit Writer(std::string& out) : out_(out) {}

  void Key(const char* key, bool first = false) {
    if (!first) out_ += ',';
    out_ += '"';
    out_ += key;
    out_ += "\":";
  }
  void Text(const std::string& text) { workflows::AppendJsonString(out_, text); }
  void Bool(bool value) { out_ += value ? "true" : "false"; }
  void Int(std::int64_t n) {
    std::array<char, 24> digits{};
    out_.append(digits.data(), std::to_chars(digits.data(), digits.data() + digits.size(), n).ptr);
  }

 private:
  std::string& out_;
};

}  // namespace

std::string StateText(const CaseState& state,
                      const std::function<std::string(const std::string&)>& seal_text) {
  auto sealed = [&](const std::string& text) { return seal_text ? seal_text(text) : text; };
  std::string out;
  out.reserve(256 + 160 * state.tokens.size());
  Writer w(out);
  out += '{';
  w.Key("clock_paused", true);
  w.Bool(state.clock_paused);
  w.Key("format");
  w.Int(2);
  w.Key("joins");
  out += '[';
  bool first = true;
  for (const auto& [activation, join] : state.joins) {
    if (!first) out += ',';
    first = false;
    out += '{';
    w.Key("activation", true);
    w.Int(join.activation);
    w.Key("pending");
    out += '[';
    for (size_t i = 0; i < join.pending.size(); ++i) {
      if (i > 0) out += ',';
      w.Int(join.pending[i]);
    }
    out += ']';
    w.Key("step");
    w.Text(join.step);
    out += '}';
  }
  out += ']';
  w.Key("next_activation");
  w.Int(state.next_activation);
  w.Key("paused_seconds");
  w.Int(state.paused_seconds);
  w.Key("paused_since");
  w.Int(state.paused_since);
  w.Key("reason");
  w.Text(sealed(state.reason));
  w.Key("status");
  w.Text(state.status);
  w.Key("tokens");
  out += '[';
  first = true;
  for (const Token& t : state.tokens) {
    if (!first) out += ',';
    first = false;
    out += '{';
    w.Key("activation", true);
    w.Int(t.activation);
    w.Key("attempt");
    w.Int(t.attempt);
    w.Key("escalated");
    w.Bool(t.escalated);
    w.Key("id");
    w.Int(t.id);
    w.Key("incident");
    w.Text(sealed(t.incident));
    w.Key("incident_after_success");
    w.Bool(t.incident_after_success);
    w.Key("join");
    w.Int(t.join);
    w.Key("signal");
    w.Text(t.signal);
    w.Key("step");
    w.Text(t.step);
    w.Key("waiting");
    out += '"';
    out += WaitingName(t.waiting);
    out += '"';
    out += '}';
  }
  out += ']';
  out += '}';
  return out;
}

}  // namespace wf::engine
