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
  // A member: its key (after a comma unless `first`) and value.
  void Int(const char* key, std::int64_t n, bool first = false) {
    Key(key, first);
    Int(n);
  }
  void Bool(const char* key, bool value) {
    Key(key);
    Bool(value);
  }
  void Text(const char* key, const std::string& text) {
    Key(key);
    Text(text);
  }
  // An array of objects, `members` writing each one's members.
  template <typename Range, typename Members>
  void Objects(const Range& range, Members members) {
    out_ += '[';
    bool first = true;
    for (const auto& item : range) {
      if (!first) out_ += ',';
      first = false;
      out_ += '{';
      members(item);
      out_ += '}';
    }
    out_ += ']';
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
  w.Int("format", 2);
  w.Key("joins");
  w.Objects(state.joins, [&](const auto& entry) {
    const Join& join = entry.second;
    w.Int("activation", join.activation, true);
    w.Key("pending");
    out += '[';
    for (size_t i = 0; i < join.pending.size(); ++i) {
      if (i > 0) out += ',';
      w.Int(join.pending[i]);
    }
    out += ']';
    w.Text("step", join.step);
  });
  w.Int("next_activation", state.next_activation);
  w.Int("paused_seconds", state.paused_seconds);
  w.Int("paused_since", state.paused_since);
  w.Text("reason", sealed(state.reason));
  w.Text("status", state.status);
  w.Key("tokens");
  w.Objects(state.tokens, [&](const Token& t) {
    w.Int("activation", t.activation, true);
    w.Int("attempt", t.attempt);
    w.Bool("escalated", t.escalated);
    w.Int("id", t.id);
    w.Text("incident", sealed(t.incident));
    w.Bool("incident_after_success", t.incident_after_success);
    w.Int("join", t.join);
    w.Text("signal", t.signal);
    w.Text("step", t.step);
    w.Text("waiting", WaitingName(t.waiting));
  });
  out += '}';
  return out;
}

}  // namespace wf::engine
