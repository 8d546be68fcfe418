#include "adapters/sql.hpp"

#include <soci/postgresql/soci-postgresql.h>
#include <soci/soci.h>
#include <soci/sqlite3/soci-sqlite3.h>

#include <cctype>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <deque>
#include <limits>
#include <mutex>

#include "adapters/settings.hpp"
#include "workflows/json_limits.hpp"

namespace wf::adapters {

// The settings and the session pool, shared by the adapter and the calls running on its pool.
struct SqlAdapter::State {
  State(std::string d, Settings s) : department(std::move(d)), settings(std::move(s)) {
    for (int i = 0; i < settings.pool_size; ++i) idle.emplace_back();  // connected on first use
  }

  std::string department;
  Settings settings;

  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::unique_ptr<soci::session>> idle;  // null: not connected (yet, or any more)
};

namespace {

constexpr std::size_t kMessageBytes = 2000;
const std::string kIdempotencyKey = "idempotency_key";

bool IsNameStart(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool IsNameChar(char c) { return IsNameStart(c) || (c >= '0' && c <= '9'); }

// "sqlite:PATH" / "sqlite://PATH" / "postgresql://..." / "postgres://..." into Settings.
Status ParseUrl(const std::string& url, const std::string& where, SqlAdapter::Settings* out) {
  auto starts = [&](std::string_view prefix) { return url.rfind(prefix, 0) == 0; };
  if (starts("postgresql://") || starts("postgres://")) {
    auto conninfo = SqlAdapter::PostgresConnInfo(url);
    if (!conninfo) return Status::Invalid(where + ": `url`: " + conninfo.error().message());
    out->postgres = true;
    out->connect_string = std::move(conninfo.value());
    // The password, if any, sits between "user:" and "@" in the authority.
    std::size_t authority = url.find("://") + 3;
    std::size_t end = url.find_first_of("/?", authority);
    std::size_t at = url.rfind('@', end == std::string::npos ? url.size() : end);
    out->redacted_url = url;
    if (at != std::string::npos && at >= authority) {
      std::size_t colon = url.find(':', authority);
      if (colon != std::string::npos && colon < at) {
        out->redacted_url = url.substr(0, colon + 1) + "***" + url.substr(at);
      }
    }
    return Status::Ok();
  }
  if (starts("sqlite:")) {
    std::string path = url.substr(starts("sqlite://") ? 9 : 7);
    if (path.empty()) return Status::Invalid(where + ": `url` names no SQLite file");
    out->postgres = false;
    out->connect_string = path;
    out->redacted_url = url;
    return Status::Ok();
  }
  return Status::Invalid(where + ": `url` must be sqlite:PATH or postgresql://..., not '" +
                         Excerpt(url, 80) + "'");
}

// The database's own words for a SOCI error.
std::string DatabaseMessage(const std::exception& error) {
  const auto* soci_error = dynamic_cast<const soci::soci_error*>(&error);
  return Excerpt(soci_error ? soci_error->get_error_message() : error.what(), kMessageBytes);
}

// Returns a session slot to the pool when it goes out of scope.
class Lease {
 public:
  explicit Lease(SqlAdapter::State& state) : state_(state) {
    std::unique_lock lock(state_.mu);
    state_.cv.wait(lock, [this] { return !state_.idle.empty(); });
    session_ = std::move(state_.idle.back());
    state_.idle.pop_back();
  }
  ~Lease() {
    {
      std::lock_guard lock(state_.mu);
      state_.idle.push_back(std::move(session_));
    }
    state_.cv.notify_one();
  }
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;

  std::unique_ptr<soci::session>& session() { return session_; }

 private:
  SqlAdapter::State& state_;
  std::unique_ptr<soci::session> session_;
};

// One bound parameter, owning its value (SOCI keeps pointers to it until execution).
struct Slot {
  enum class Kind { kText, kInteger, kDouble } kind = Kind::kText;
  std::string name;
  std::string text;
  long long integer = 0;
  double number = 0;
  soci::indicator ind = soci::i_ok;
};

void FillSlot(const nlohmann::json& value, Slot* slot) {
  switch (value.type()) {
    case nlohmann::json::value_t::null:
      slot->ind = soci::i_null;
      break;
    case nlohmann::json::value_t::boolean:
      slot->kind = Slot::Kind::kInteger;
      slot->integer = value.get<bool>() ? 1 : 0;
      break;
    case nlohmann::json::value_t::number_integer:
      slot->kind = Slot::Kind::kInteger;
      slot->integer = value.get<long long>();
      break;
    case nlohmann::json::value_t::number_unsigned: {
      auto u = value.get<unsigned long long>();
      if (u <= static_cast<unsigned long long>(std::numeric_limits<long long>::max())) {
        slot->kind = Slot::Kind::kInteger;
        slot->integer = static_cast<long long>(u);
      } else {
        slot->text = std::to_string(u);
      }
      break;
    }
    case nlohmann::json::value_t::number_float:
      slot->kind = Slot::Kind::kDouble;
      slot->number = value.get<double>();
      break;
    case nlohmann::json::value_t::string:
      slot->text = value.get<std::string>();
      break;
    default:  // objects, arrays, binary: their JSON text
      slot->text = value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      break;
  }
}

std::string IsoText(const std::tm& t) {
  char buffer[64];
  if (t.tm_hour == 0 && t.tm_min == 0 && t.tm_sec == 0) {
    std::snprintf(buffer, sizeof buffer, "%04d-%02d-%02d", t.tm_year + 1900, t.tm_mon + 1,
                  t.tm_mday);
  } else {
    std::snprintf(buffer, sizeof buffer, "%04d-%02d-%02dT%02d:%02d:%02d", t.tm_year + 1900,
                  t.tm_mon + 1, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec);
  }
  return buffer;
}

// SQLite gives an expression column (count(*), a + 1, CAST(...)) no declared type, and SOCI
// then reads it as text: a value written the way SQLite prints numbers is taken as a number.
nlohmann::json NumberOrText(const std::string& text) {
  std::size_t digits = text.size() > 0 && text[0] == '-' ? 1 : 0;
  bool integer = text.size() > digits && text.size() - digits <= 18 &&
                 (text[digits] != '0' || text.size() == digits + 1) &&
                 text.find_first_not_of("0123456789", digits) == std::string::npos;
  if (integer) return std::stoll(text);
  if (!text.empty() && text.find_first_not_of("0123456789.-+e") == std::string::npos &&
      text.find('.') != std::string::npos) {
    char* end = nullptr;
    double d = std::strtod(text.c_str(), &end);
    if (end == text.c_str() + text.size() && std::isfinite(d)) return d;
  }
  return text;
}

nlohmann::json ColumnValue(const soci::row& row, std::size_t i, bool untyped) {
  if (row.get_indicator(i) == soci::i_null) return nullptr;
  if (untyped && row.get_properties(i).get_data_type() == soci::dt_string) {
    return NumberOrText(row.get<std::string>(i));
  }
  switch (row.get_properties(i).get_data_type()) {
    case soci::dt_integer:
      return row.get<int>(i);
    case soci::dt_long_long:
      return row.get<long long>(i);
    case soci::dt_unsigned_long_long:
      return row.get<unsigned long long>(i);
    case soci::dt_double: {
      double d = row.get<double>(i);
      if (!std::isfinite(d)) return nullptr;
      return d;
    }
    case soci::dt_date:
      return IsoText(row.get<std::tm>(i));
    case soci::dt_string:
    case soci::dt_xml:
      return row.get<std::string>(i);
    case soci::dt_blob:
    default:
      return nullptr;  // binary data has no JSON form
  }
}

// What a failed statement means for the step.
StepOutcome MapError(const SqlAdapter::State& state, const std::string& label,
                     soci::session* sql, const std::exception& error,
                     std::chrono::milliseconds timeout, bool* drop_session) {
  const std::string prefix = label + ": ";
  const std::string message = DatabaseMessage(error);
  if (state.settings.postgres) {
    std::string sqlstate;
    if (const auto* pg = dynamic_cast<const soci::postgresql_soci_error*>(&error)) {
      sqlstate = pg->sqlstate();
    }
    const auto* soci_error = dynamic_cast<const soci::soci_error*>(&error);
    bool lost = sqlstate.rfind("08", 0) == 0 || sqlstate == "57P01" || sqlstate == "57P02" ||
                sqlstate == "57P03" ||
                (soci_error && soci_error->get_error_category() == soci::soci_error::connection_error) ||
                (sql != nullptr && !sql->is_connected());
    if (lost) {
      *drop_session = true;
      return StepOutcome::Retry(prefix + "database connection lost (" +
                                state.settings.redacted_url + "): " + message);
    }
    if (sqlstate == "57014") {
      return StepOutcome::Retry(prefix + "timed out after " + DescribeDuration(timeout) + ": " +
                                message);
    }
    if (sqlstate == "40001" || sqlstate == "40P01" || sqlstate == "55P03" ||
        sqlstate.rfind("53", 0) == 0) {
      return StepOutcome::Retry(prefix + "database busy, retry: " + message);
    }
    return StepOutcome::Failed(prefix + message);
  }
  if (const auto* lite = dynamic_cast<const soci::sqlite3_soci_error*>(&error)) {
    int code = lite->result() & 0xff;
    if (code == 5 || code == 6) {  // SQLITE_BUSY, SQLITE_LOCKED past busy_timeout
      return StepOutcome::Retry(prefix + "database busy, retry: " + message);
    }
    if (code == 14 || code == 10) {  // SQLITE_CANTOPEN, SQLITE_IOERR
      *drop_session = true;
      return StepOutcome::Retry(prefix + "cannot use " + state.settings.redacted_url + ": " +
                                message);
    }
  }
  return StepOutcome::Failed(prefix + message);
}

// One call, start to end, on a pool thread. Never throws.
StepOutcome Execute(SqlAdapter::State& state, const StepRequest& request) {
  const std::string label = CallLabel(state.department, request.operation);
  auto query = state.settings.queries.find(request.operation);
  if (query == state.settings.queries.end()) {
    return StepOutcome::Failed(label + ": unknown operation '" + request.operation +
                               "' (this department's queries do not name it)");
  }
  const SqlAdapter::NamedQuery& named = query->second;
  const nlohmann::json& fields = request.fields;

  // Parameters first: a missing field fails before any connection is taken.
  std::deque<Slot> slots;  // a deque: binding keeps pointers to the slots
  for (std::size_t i = 0; i < named.occurrences.size(); ++i) {
    const std::string& field = named.occurrences[i];
    Slot& slot = slots.emplace_back();
    slot.name = "wf_p" + std::to_string(i);
    auto it = fields.is_object() ? fields.find(field) : fields.end();
    if (fields.is_object() && it != fields.end()) {
      FillSlot(*it, &slot);
    } else if (field == kIdempotencyKey) {
      slot.text = request.idempotency_key;
    } else {
      return StepOutcome::Failed(label + ": the query needs the field '" + field +
                                 "', which the call does not give");
    }
  }

  const std::chrono::milliseconds timeout =
      EffectiveTimeout(request.timeout, state.settings.timeout);
  Lease lease(state);
  std::unique_ptr<soci::session>& sql = lease.session();
  if (!sql) {
    try {
      if (state.settings.postgres) {
        sql = std::make_unique<soci::session>(soci::postgresql, state.settings.connect_string);
      } else {
        sql = std::make_unique<soci::session>(soci::sqlite3, state.settings.connect_string);
      }
    } catch (const std::exception& e) {
      sql.reset();
      return StepOutcome::Retry(label + ": cannot connect to " + state.settings.redacted_url +
                                ": " + DatabaseMessage(e));
    }
  }

  bool drop_session = false;
  StepOutcome outcome;
  try {
    const std::string ms = std::to_string(std::max<long long>(1, timeout.count()));
    if (state.settings.postgres) {
      *sql << ("SET statement_timeout = " + ms);
    } else {
      *sql << ("PRAGMA busy_timeout = " + ms);
    }

    soci::row row;
    soci::statement statement(*sql);
    statement.exchange(soci::into(row));
    for (Slot& slot : slots) {
      switch (slot.kind) {
        case Slot::Kind::kText:
          statement.exchange(soci::use(slot.text, slot.ind, slot.name));
          break;
        case Slot::Kind::kInteger:
          statement.exchange(soci::use(slot.integer, slot.ind, slot.name));
          break;
        case Slot::Kind::kDouble:
          statement.exchange(soci::use(slot.number, slot.ind, slot.name));
          break;
      }
    }
    statement.alloc();
    statement.prepare(named.sql, soci::details::st_one_time_query);
    statement.define_and_bind();
    bool got = statement.execute(true);

    nlohmann::json rows = nlohmann::json::array();
    if (row.size() == 0) {
      long long affected = statement.get_affected_rows();
      outcome = StepOutcome::Done({{"rows", rows}, {"count", std::max<long long>(0, affected)}});
    } else {
      // Which columns SQLite gives no declared type (see NumberOrText).
      std::vector<bool> untyped(row.size(), false);
      if (!state.settings.postgres) {
        auto* backend = static_cast<soci::sqlite3_statement_backend*>(statement.get_backend());
        for (std::size_t i = 0; i < row.size(); ++i) {
          untyped[i] = backend->stmt_ != nullptr &&
                       sqlite_api::sqlite3_column_decltype(backend->stmt_,
                                                                 static_cast<int>(i)) == nullptr;
        }
      }
      // The answer's bounds (workflows/json_limits.hpp) as the rows come: a query that returns a
      // million rows stops fetching at the bound instead of filling memory first.
      const workflows::JsonLimits limits;
      workflows::JsonSize total{2 + 32, 3, 2};  // {"rows":[],"count":N} around the rows
      std::optional<StepOutcome> refused;
      while (got) {
        nlohmann::json object = nlohmann::json::object();
        for (std::size_t i = 0; i < row.size(); ++i) {
          object[row.get_properties(i).get_name()] = ColumnValue(row, i, untyped[i]);
        }
        auto size = workflows::MeasureJson(object, limits);
        if (!size) {
          refused = StepOutcome::Failed(label + ": row " + std::to_string(rows.size() + 1) +
                                        " is " + size.error().message());
          break;
        }
        total.bytes += size->bytes + 1;
        total.values += size->values;
        if (total.bytes > limits.max_bytes || total.values > limits.max_values) {
          refused = StepOutcome::Failed(
              label + ": the rows make " +
              (total.bytes > limits.max_bytes
                   ? "JSON larger than " + std::to_string(limits.max_bytes) + " bytes"
                   : "JSON with more than " + std::to_string(limits.max_values) + " values") +
              " (stopped at row " + std::to_string(rows.size() + 1) + ")");
          break;
        }
        rows.push_back(std::move(object));
        got = statement.fetch();
      }
      std::size_t count = rows.size();
      outcome = refused ? std::move(*refused)
                        : StepOutcome::Done({{"rows", std::move(rows)}, {"count", count}});
    }
  } catch (const std::exception& e) {
    outcome = MapError(state, label, sql.get(), e, timeout, &drop_session);
  } catch (...) {
    outcome = StepOutcome::Failed(label + ": unexpected error");
    drop_session = true;
  }
  if (drop_session) sql.reset();
  return outcome;
}

asio::awaitable<StepOutcome> RunOnPool(std::shared_ptr<SqlAdapter::State> state,
                                       StepRequest request) {
  co_return Execute(*state, request);
}

}  // namespace

Result<std::string> SqlAdapter::PostgresConnInfo(const std::string& url) {
  std::size_t scheme = url.find("://");
  if (scheme == std::string::npos) return Status::Invalid("not a postgresql:// URL");
  auto decode = [](std::string_view text) -> std::optional<std::string> {
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
      if (text[i] != '%') {
        out += text[i];
        continue;
      }
      if (i + 2 >= text.size() || !std::isxdigit(static_cast<unsigned char>(text[i + 1])) ||
          !std::isxdigit(static_cast<unsigned char>(text[i + 2]))) {
        return std::nullopt;
      }
      out += static_cast<char>(std::stoi(std::string(text.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    }
    return out;
  };
  std::string conninfo;
  bool bad = false;
  auto add = [&](std::string_view key, std::string_view raw) {
    auto value = decode(raw);
    if (!value) {
      bad = true;
      return;
    }
    if (!conninfo.empty()) conninfo += ' ';
    conninfo += std::string(key) + "='";
    for (char c : *value) {
      if (c == '\\' || c == '\'') conninfo += '\\';
      conninfo += c;
    }
    conninfo += '\'';
  };
  std::string_view rest(url);
  rest.remove_prefix(scheme + 3);
  std::string_view query;
  if (std::size_t q = rest.find('?'); q != std::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  std::string_view path;
  if (std::size_t slash = rest.find('/'); slash != std::string_view::npos) {
    path = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
  }
  if (std::size_t at = rest.rfind('@'); at != std::string_view::npos) {
    std::string_view user = rest.substr(0, at);
    rest = rest.substr(at + 1);
    std::size_t colon = user.find(':');
    if (!user.substr(0, colon).empty()) add("user", user.substr(0, colon));
    if (colon != std::string_view::npos) add("password", user.substr(colon + 1));
  }
  std::string_view host = rest, port;
  if (!rest.empty() && rest.front() == '[') {  // [IPv6]:port
    std::size_t close = rest.find(']');
    if (close == std::string_view::npos) return Status::Invalid("unclosed '[' in the host");
    host = rest.substr(1, close - 1);
    if (close + 1 < rest.size() && rest[close + 1] == ':') port = rest.substr(close + 2);
  } else if (std::size_t colon = rest.rfind(':'); colon != std::string_view::npos) {
    host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
  }
  if (!host.empty()) add("host", host);
  if (!port.empty()) add("port", port);
  if (!path.empty()) add("dbname", path);
  bool has_connect_timeout = false;
  while (!query.empty()) {
    std::size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    std::size_t eq = pair.find('=');
    if (eq == std::string_view::npos || eq == 0) {
      return Status::Invalid("a query parameter is not key=value");
    }
    std::string_view key = pair.substr(0, eq);
    if (key.find_first_not_of("abcdefghijklmnopqrstuvwxyz_") != std::string_view::npos) {
      return Status::Invalid("bad parameter name '" + std::string(key) + "'");
    }
    if (key == "connect_timeout") has_connect_timeout = true;
    add(key, pair.substr(eq + 1));
  }
  if (!has_connect_timeout) add("connect_timeout", "10");
  if (bad) return Status::Invalid("bad percent-escape");
  return conninfo;
}

Result<SqlAdapter::NamedQuery> SqlAdapter::ParseQuery(const std::string& text) {
  NamedQuery out;
  out.text = text;
  std::string& sql = out.sql;
  const std::size_t n = text.size();
  std::size_t i = 0;
  while (i < n) {
    char c = text[i];
    if (c == '\'' || c == '"') {  // a string or quoted identifier; doubled quotes escape
      std::size_t j = i + 1;
      for (;;) {
        if (j >= n) {
          return Status::Invalid(std::string("unterminated ") +
                                 (c == '\'' ? "string" : "quoted identifier") + " in the query");
        }
        if (text[j] == c) {
          if (j + 1 < n && text[j + 1] == c) {
            j += 2;
            continue;
          }
          break;
        }
        ++j;
      }
      sql.append(text, i, j + 1 - i);
      i = j + 1;
    } else if (c == '-' && i + 1 < n && text[i + 1] == '-') {  // a line comment
      std::size_t end = text.find('\n', i);
      sql += ' ';
      i = end == std::string::npos ? n : end;
    } else if (c == '/' && i + 1 < n && text[i + 1] == '*') {  // a block comment
      std::size_t end = text.find("*/", i + 2);
      if (end == std::string::npos) return Status::Invalid("unterminated comment in the query");
      sql += ' ';
      i = end + 2;
    } else if (c == ':' && i + 1 < n && text[i + 1] == ':') {  // a PostgreSQL cast
      sql += "::";
      i += 2;
    } else if (c == ':' && i + 1 < n && IsNameStart(text[i + 1])) {
      std::size_t j = i + 1;
      while (j < n && IsNameChar(text[j])) ++j;
      sql += ":wf_p" + std::to_string(out.occurrences.size());
      out.occurrences.push_back(text.substr(i + 1, j - i - 1));
      i = j;
    } else {
      sql += c;
      ++i;
    }
  }
  return out;
}

Result<std::unique_ptr<SqlAdapter>> SqlAdapter::Create(std::string department,
                                                       const nlohmann::json& settings) {
  const std::string where = "department '" + department + "'";
  if (!settings.is_object()) return Status::Invalid(where + ": settings must be a mapping");
  Settings parsed;
  bool have_url = false;
  for (const auto& [key, value] : settings.items()) {
    if (key == "url") {
      if (!value.is_string() || value.get<std::string>().empty()) {
        return Status::Invalid(where + ": `url` must be text: sqlite:PATH or postgresql://...");
      }
      auto url = SubstituteEnv(value.get<std::string>(), where + ": `url`");
      if (!url) return url.error();
      Status status = ParseUrl(*url, where, &parsed);
      if (!status.ok()) return status;
      have_url = true;
    } else if (key == "queries") {
      if (!value.is_object() || value.empty()) {
        return Status::Invalid(where +
                               ": `queries` must be a mapping of operation names to SQL, e.g. "
                               "{get_citizen: \"SELECT ... WHERE id = :citizen_id\"}");
      }
      for (const auto& [operation, text] : value.items()) {
        const std::string at = where + ": queries." + operation;
        if (operation.empty()) return Status::Invalid(where + ": a query has an empty name");
        if (!text.is_string() || text.get<std::string>().find_first_not_of(" \t\r\n") ==
                                     std::string::npos) {
          return Status::Invalid(at + ": must be one SQL statement as text");
        }
        auto query = ParseQuery(text.get<std::string>());
        if (!query) return Status::Invalid(at + ": " + query.error().message());
        parsed.queries.emplace(operation, std::move(query.value()));
      }
    } else if (key == "timeout") {
      if (value.is_null()) continue;
      auto timeout = ParseDurationSetting(value, where + ": `timeout`");
      if (!timeout) return timeout.error();
      parsed.timeout = *timeout;
    } else if (key == "pool_size") {
      if (value.is_null()) continue;
      if (!value.is_number_integer() || value.get<long long>() < 1 ||
          value.get<long long>() > kMaxPoolSize) {
        return Status::Invalid(where + ": `pool_size` must be a whole number from 1 to " +
                               std::to_string(kMaxPoolSize));
      }
      parsed.pool_size = value.get<int>();
    } else {
      return Status::Invalid(where + ": unknown sql setting `" + key +
                             "` (known: url, queries, timeout, pool_size)");
    }
  }
  if (!have_url) {
    return Status::Invalid(where + ": `url` is required: sqlite:PATH or postgresql://...");
  }
  if (parsed.queries.empty()) {
    return Status::Invalid(where + ": `queries` is required: operation names and their SQL");
  }
  return std::make_unique<SqlAdapter>(std::move(department), std::move(parsed));
}

SqlAdapter::SqlAdapter(std::string department, Settings settings)
    : state_(std::make_shared<State>(std::move(department), std::move(settings))),
      pool_(static_cast<std::size_t>(state_->settings.pool_size)) {}

SqlAdapter::~SqlAdapter() { pool_.join(); }

Status SqlAdapter::Validate(const StepCall& call) const {
  const std::string where = "department '" + state_->department + "'";
  if (!call.call.is_object()) {
    return Status::Invalid(where + ": the call must be a mapping with an `operation`");
  }
  auto it = call.call.find("operation");
  if (it == call.call.end()) {
    return Status::Invalid(where + ": the call needs an `operation`, one of its queries");
  }
  if (!it->is_string()) return Status::Invalid(where + ": `operation` must be text");
  const std::string operation = it->get<std::string>();
  const auto& queries = state_->settings.queries;
  if (queries.count(operation) == 0) {
    std::string known;
    for (const auto& [name, query] : queries) known += (known.empty() ? "" : ", ") + name;
    return Status::Invalid(where + ": unknown operation '" + operation + "' (known: " + known +
                           ")");
  }
  return Status::Ok();
}

asio::awaitable<StepOutcome> SqlAdapter::Invoke(StepRequest request) {
  const std::string label = CallLabel(state_->department, request.operation);
  try {
    co_return co_await asio::co_spawn(pool_, RunOnPool(state_, std::move(request)),
                                      asio::use_awaitable);
  } catch (const std::exception& e) {
    co_return StepOutcome::Failed(label + ": " + Excerpt(e.what(), kMessageBytes));
  }
}

}  // namespace wf::adapters
