#include "workflows/yaml_tree.hpp"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/exceptions.h>
#include <yaml-cpp/mark.h>
#include <yaml-cpp/parser.h>

#include <exception>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "workflows/i18n.hpp"

namespace wf::workflows {

const YamlNode* YamlNode::Find(std::string_view key) const {
  if (kind != Kind::kMapping) return nullptr;
  for (const auto& [k, v] : entries) {
    if (k.kind == Kind::kScalar && k.scalar == key) return &v;
  }
  return nullptr;
}

const char* YamlNode::KindName() const {
  switch (kind) {
    case Kind::kNull:
      return "null";
    case Kind::kScalar:
      return Tr("a scalar");
    case Kind::kSequence:
      return Tr("a list");
    case Kind::kMapping:
      return Tr("a mapping");
  }
  return "null";
}

namespace {

// Thrown from inside the event handler to abandon parsing at once: yaml-cpp's parser recurses
// once per nesting level, so unwinding through it is the only way to stop it early. Never
// leaves this file. The diagnostic is already in the sink when it is thrown.
struct StopParsing {};

// More errors than this from one parse are noise: stop and say so.
constexpr size_t kMaxErrors = 100;

// yaml-cpp's tag for a plain scalar with no explicit tag; "!" marks quoted and block scalars.
constexpr const char* kPlainTag = "?";
constexpr const char* kNonPlainTag = "!";
constexpr const char* kStrTag = "tag:yaml.org,2002:str";
constexpr const char* kNullTag = "tag:yaml.org,2002:null";

SourceLocation ToLocation(const YAML::Mark& mark) {
  if (mark.is_null() || mark.line < 0 || mark.column < 0) return {};
  return {mark.line + 1, mark.column + 1};
}

bool IsNullText(const std::string& text) {
  return text.empty() || text == "~" || text == "null" || text == "Null" || text == "NULL";
}

// Builds a YamlNode tree from yaml-cpp's parse events, enforcing the limits as it goes.
class TreeBuilder : public YAML::EventHandler {
 public:
  TreeBuilder(std::string_view text, DiagnosticSink& sink, const YamlLimits& limits)
      : text_(text), sink_(sink), limits_(limits) {
    root_.where = {1, 1};  // an empty document is a null at the start of the file
  }

  // After the first document: any further document start is an error, and parsing stops there.
  void ExpectNoMoreDocuments() { first_document_done_ = true; }

  // The tree built so far. When parsing stopped early, open collections are closed as they
  // stand so the partial tree still holds what was read.
  YamlNode TakeRoot() {
    unwinding_ = true;  // what was cut off is not the author's mistake: report nothing more
    while (!open_.empty()) CloseCollection();
    return std::move(root_);
  }

  // Reports an error at `where`; stops parsing once too many have piled up.
  void Error(SourceLocation where, std::string message) {
    if (unwinding_) return;
    sink_.Error(where, std::move(message));
    if (++errors_ == kMaxErrors) {
      sink_.Error(where, Tr("too many errors, stopped reading the YAML here"));
      throw StopParsing{};
    }
  }

  // Reports an error and stops parsing.
  [[noreturn]] void Fatal(SourceLocation where, std::string message) {
    sink_.Error(where, std::move(message));
    throw StopParsing{};
  }

  SourceLocation last() const { return last_; }

  void OnDocumentStart(const YAML::Mark& mark) override {
    Count(mark);
    if (!first_document_done_) return;
    if (StartsNewDocument(mark.pos)) Fatal(last_, Tr("only one YAML document is allowed"));
    // yaml-cpp ends a document early at a token it cannot place (a stray `,` or `}`) and would
    // start the next one there: that is a syntax error, not a second document.
    std::string what = Describe(mark.pos);
    Fatal(last_, what.empty()
                     ? std::string(Tr("YAML syntax: unexpected content after the document"))
                     : TrFormat("YAML syntax: unexpected {0} after the document", what));
  }
  void OnDocumentEnd() override { Count(); }

  void OnNull(const YAML::Mark& mark, YAML::anchor_t /*anchor*/) override {
    Count(mark);
    YamlNode node;
    node.where = last_;
    Add(std::move(node));
  }

  void OnAlias(const YAML::Mark& mark, YAML::anchor_t /*anchor*/) override {
    Count(mark);
    Error(last_, Tr("aliases (*name) are not allowed in procedure definitions"));
    YamlNode node;  // a placeholder keeps the surrounding structure for later diagnostics
    node.where = last_;
    alias_placeholder_ = true;
    Add(std::move(node));
    alias_placeholder_ = false;
  }

  void OnScalar(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t /*anchor*/,
                const std::string& value) override {
    Count(mark);
    YamlNode node;
    node.where = last_;
    if (tag == kNullTag && IsNullText(value)) {
      Add(std::move(node));
      return;
    }
    node.kind = YamlNode::Kind::kScalar;
    node.scalar = value;
    // Quoted and block scalars come tagged "!"; an explicit !!str means the same. A plain
    // scalar ("?") or one with another explicit tag is left for the reader to interpret.
    node.quoted = tag == kNonPlainTag || tag == kStrTag;
    if (tag == kPlainTag && IsNullText(value)) node.kind = YamlNode::Kind::kNull;
    Add(std::move(node));
  }

  void OnSequenceStart(const YAML::Mark& mark, const std::string& /*tag*/,
                       YAML::anchor_t /*anchor*/, YAML::EmitterStyle::value style) override {
    Open(mark, YamlNode::Kind::kSequence, style);
  }
  void OnSequenceEnd() override {
    Count();
    CloseCollection();
  }

  void OnMapStart(const YAML::Mark& mark, const std::string& /*tag*/, YAML::anchor_t /*anchor*/,
                  YAML::EmitterStyle::value style) override {
    Open(mark, YamlNode::Kind::kMapping, style);
  }
  void OnMapEnd() override {
    Count();
    CloseCollection();
  }

 private:
  // A collection being filled, with what a mapping needs to check its keys.
  struct OpenCollection {
    YamlNode node;
    std::optional<YamlNode> pending_key;
    bool skip_value = false;          // the pending key was refused: drop its value
    std::map<std::string, int> keys;  // key text -> line of its first occurrence
  };

  // Whether the token at byte `pos` opens a further document: a `---` there, or a `...` line
  // (document end) somewhere before it.
  bool StartsNewDocument(int pos) const {
    if (pos < 0 || static_cast<size_t>(pos) > text_.size()) return true;  // cannot tell: assume so
    auto is_marker_at = [this](size_t at, std::string_view marker) {
      if (text_.substr(at, 3) != marker) return false;
      return at + 3 >= text_.size() || text_[at + 3] == ' ' || text_[at + 3] == '\t' ||
             text_[at + 3] == '\n' || text_[at + 3] == '\r';
    };
    if (is_marker_at(pos, "---")) return true;
    for (size_t at = 0; at < static_cast<size_t>(pos); at = text_.find('\n', at) + 1) {
      if (is_marker_at(at, "...")) return true;
      if (text_.find('\n', at) == std::string_view::npos) break;
    }
    return false;
  }

  // The character at byte `pos` quoted for a message, when it is printable ASCII; else empty.
  std::string Describe(int pos) const {
    if (pos >= 0 && static_cast<size_t>(pos) < text_.size()) {
      char c = text_[pos];
      if (c > ' ' && c < 127) return std::string("'") + c + "'";
    }
    return "";
  }

  // Counts one event against the budget; `mark`, when given, becomes the current position.
  void Count(const YAML::Mark* mark = nullptr) {
    if (mark != nullptr) {
      SourceLocation where = ToLocation(*mark);
      if (where.line > 0) last_ = where;
    }
    if (++events_ > limits_.max_events) {
      Fatal(last_, TrFormat("more than {0} YAML events; the definition is too large to read",
                            i18n::Number(static_cast<long long>(limits_.max_events))));
    }
  }
  void Count(const YAML::Mark& mark) { Count(&mark); }

  void Open(const YAML::Mark& mark, YamlNode::Kind kind, YAML::EmitterStyle::value style) {
    Count(mark);
    if (open_.size() >= static_cast<size_t>(limits_.max_depth < 0 ? 0 : limits_.max_depth)) {
      Fatal(last_, TrFormat("nesting deeper than {0} levels", i18n::Number(limits_.max_depth)));
    }
    OpenCollection collection;
    collection.node.kind = kind;
    collection.node.where = last_;
    collection.node.flow = style == YAML::EmitterStyle::Flow;
    open_.push_back(std::move(collection));
  }

  void CloseCollection() {
    if (open_.empty()) return;  // an unbalanced end event; yaml-cpp does not send one
    OpenCollection done = std::move(open_.back());
    open_.pop_back();
    if (done.pending_key && !done.skip_value) {
      // A key whose value never came (parsing stopped): keep it with a null value.
      YamlNode value;
      value.where = done.pending_key->where;
      done.node.entries.emplace_back(std::move(*done.pending_key), std::move(value));
    }
    Add(std::move(done.node));
  }

  // Places a finished node: as the root, a list item, a mapping key or a mapping value.
  void Add(YamlNode node) {
    if (open_.empty()) {
      root_ = std::move(node);
      return;
    }
    OpenCollection& parent = open_.back();
    if (parent.node.kind == YamlNode::Kind::kSequence) {
      parent.node.items.push_back(std::move(node));
      return;
    }
    if (!parent.pending_key) {
      AddKey(parent, std::move(node));
      return;
    }
    if (!parent.skip_value) {
      // yaml-cpp places an empty value (`key:` at the end of a line) at the next token, often
      // lines below; the key's position is where the author will look.
      if (node.kind == YamlNode::Kind::kNull && node.where.line > parent.pending_key->where.line) {
        node.where = parent.pending_key->where;
      }
      parent.node.entries.emplace_back(std::move(*parent.pending_key), std::move(node));
    }
    parent.pending_key.reset();
    parent.skip_value = false;
  }

  void AddKey(OpenCollection& parent, YamlNode key) {
    bool refused = false;
    if (key.kind == YamlNode::Kind::kScalar) {
      auto [it, inserted] = parent.keys.emplace(key.scalar, key.where.line);
      if (!inserted) {
        refused = true;
        Error(key.where, TrFormat("duplicate key '{0}' (first at line {1})", key.scalar,
                                  std::to_string(it->second)));
      }
    } else if (key.kind == YamlNode::Kind::kNull) {
      // Aliases arrive here as null placeholders and were reported already.
      refused = true;
      if (!alias_placeholder_) Error(key.where, Tr("a mapping key must not be empty or null"));
    } else {
      refused = true;
      Error(key.where, TrFormat("a mapping key must be a plain scalar, not {0}", key.KindName()));
    }
    parent.pending_key = std::move(key);
    parent.skip_value = refused;
  }

  std::string_view text_;
  DiagnosticSink& sink_;
  const YamlLimits& limits_;
  std::vector<OpenCollection> open_;
  YamlNode root_;
  SourceLocation last_{1, 1};
  size_t events_ = 0;
  size_t errors_ = 0;
  bool first_document_done_ = false;
  bool alias_placeholder_ = false;  // the node being added stands for a refused alias
  bool unwinding_ = false;
};

// yaml-cpp's message when an alias names no anchor: for us every alias is refused anyway.
bool IsUnknownAnchor(const std::string& message) {
  return message == YAML::ErrorMsg::UNKNOWN_ANCHOR;
}

}  // namespace

YamlNode ParseYaml(std::string_view text, DiagnosticSink& sink, const YamlLimits& limits) {
  if (text.size() > limits.max_bytes) {
    sink.Error({1, 1}, TrFormat("the definition is {0} bytes, more than the limit of {1} bytes",
                                i18n::Number(static_cast<long long>(text.size())),
                                i18n::Number(static_cast<long long>(limits.max_bytes))));
    return YamlNode{};
  }
  TreeBuilder builder(text, sink, limits);
  try {
    std::istringstream in{std::string(text)};
    YAML::Parser parser(in);
    if (parser.HandleNextDocument(builder)) {
      // A second call parses nothing: the builder stops at the next document's start, if any.
      builder.ExpectNoMoreDocuments();
      parser.HandleNextDocument(builder);
    }
  } catch (const StopParsing&) {
    // Already reported.
  } catch (const YAML::ParserException& e) {
    SourceLocation where = ToLocation(e.mark);
    if (where.line == 0) where = builder.last();
    if (IsUnknownAnchor(e.msg)) {
      sink.Error(where, Tr("aliases (*name) are not allowed in procedure definitions"));
    } else {
      sink.Error(where, TrFormat("YAML syntax: {0}", e.msg));
    }
  } catch (const std::exception& e) {
    sink.Error(builder.last(), TrFormat("YAML parser failed: {0}", e.what()));
  } catch (...) {
    sink.Error(builder.last(), Tr("YAML parser failed"));
  }
  return builder.TakeRoot();
}

}  // namespace wf::workflows
