// Prepared statements on PostgreSQL (engine/store_prepared.cpp).
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "engine/store.hpp"
#include "engine/store_internal.hpp"
#include "tests/support/test_database.hpp"

namespace wf::engine {
namespace {

TEST_CASE("named parameters become numbered ones, quotes and casts left alone", "[engine][store]") {
  detail::NamedToNumbered n = detail::Numbered(
      "SELECT :a, ':b', \"x:y\", CAST(:a AS text), x::int, :b_2 FROM t WHERE c = :a");
  CHECK(n.sql == "SELECT $1, ':b', \"x:y\", CAST($1 AS text), x::int, $2 FROM t WHERE c = $1");
  CHECK(n.names == std::vector<std::string>{"a", "b_2"});
  CHECK(detail::Numbered("SELECT 1").names.empty());
}

// Reads PostgreSQL's binary form of a one-dimensional array (array_send): its element type's
// OID and each element's bytes, nullopt for NULL.
struct BinaryArray {
  std::uint32_t element = 0;
  bool has_nulls = false;
  std::vector<std::optional<std::string>> elements;
};

BinaryArray ReadBinaryArray(const std::string& bytes) {
  size_t at = 0;
  auto int32 = [&]() {
    REQUIRE(at + 4 <= bytes.size());
    std::uint32_t value = 0;
    for (int i = 0; i < 4; ++i) value = value << 8 | static_cast<unsigned char>(bytes[at++]);
    return value;
  };
  BinaryArray array;
  CHECK(int32() == 1);  // dimensions
  array.has_nulls = int32() == 1;
  array.element = int32();
  const std::uint32_t count = int32();
  CHECK(int32() == 1);  // lower bound
  for (std::uint32_t i = 0; i < count; ++i) {
    const std::uint32_t length = int32();
    if (length == 0xffffffffu) {
      array.elements.emplace_back();
      continue;
    }
    REQUIRE(at + length <= bytes.size());
    array.elements.emplace_back(bytes.substr(at, length));
    at += length;
  }
  CHECK(at == bytes.size());
  return array;
}

std::string BigEndian64(std::int64_t value) {
  std::string out;
  for (int shift = 56; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((static_cast<std::uint64_t>(value) >> shift) & 0xff));
  }
  return out;
}

TEST_CASE("multi-row statements send their arrays in PostgreSQL's binary form", "[engine][store]") {
  const std::vector<std::string> casts = {"text", "bigint", "jsonb"};
  SECTION("text, bigint and jsonb columns become binary arrays, NULLs included") {
    std::vector<detail::Row> five;
    const std::vector<std::string> texts = {"a", "", R"(q"uo\te)", "Nguyễn", "{1,2}"};
    const std::vector<std::string> numbers = {"0", "-1", "9223372036854775807",
                                              "-9223372036854775808", "42"};
    for (size_t i = 0; i < 5; ++i) {
      detail::Row row{texts[i], numbers[i], R"({"i":)" + std::to_string(i) + "}"};
      if (i == 3) row[2].reset();
      five.push_back(row);
    }
    std::vector<detail::DeferredWrite> out;
    detail::AddMultiRow(out, "test", "INSERT INTO t SELECT * FROM ", casts, " AS v",
                        std::vector<detail::Row>(five), false);
    REQUIRE(out.size() == 1);
    CHECK(out[0].binary);
    CHECK(out[0].sql.find("unnest(CAST($1 AS text[]), CAST($2 AS bigint[])") != std::string::npos);
    REQUIRE(out[0].params.size() == 3);
    BinaryArray text = ReadBinaryArray(*out[0].params[0]);
    CHECK(text.element == 25);
    CHECK_FALSE(text.has_nulls);
    REQUIRE(text.elements.size() == 5);
    for (size_t i = 0; i < 5; ++i) CHECK(*text.elements[i] == texts[i]);
    BinaryArray bigint = ReadBinaryArray(*out[0].params[1]);
    CHECK(bigint.element == 20);
    REQUIRE(bigint.elements.size() == 5);
    CHECK(*bigint.elements[1] == BigEndian64(-1));
    CHECK(*bigint.elements[2] == BigEndian64(INT64_MAX));
    CHECK(*bigint.elements[3] == BigEndian64(INT64_MIN));
    BinaryArray jsonb = ReadBinaryArray(*out[0].params[2]);
    CHECK(jsonb.element == 3802);
    CHECK(jsonb.has_nulls);
    REQUIRE(jsonb.elements.size() == 5);
    CHECK(*jsonb.elements[0] == std::string("\x01") + R"({"i":0})");
    CHECK_FALSE(jsonb.elements[3].has_value());
  }
  SECTION("a bigint that is not one, or a type without a binary form here, is sent as text") {
    std::vector<detail::Row> five(5, detail::Row{"a", "12x", "{}"});
    std::vector<detail::DeferredWrite> out;
    detail::AddMultiRow(out, "test", "INSERT INTO t SELECT * FROM ", casts, " AS v",
                        std::vector<detail::Row>(five), false);
    REQUIRE(out.size() == 1);
    CHECK_FALSE(out[0].binary);
    CHECK(*out[0].params[1] == R"({"12x","12x","12x","12x","12x"})");
    std::vector<detail::DeferredWrite> dates;
    detail::AddMultiRow(dates, "test", "INSERT INTO t SELECT * FROM ", {"text", "date"}, " AS v",
                        std::vector<detail::Row>(5, detail::Row{"a", "2026-12-07"}), false);
    REQUIRE(dates.size() == 1);
    CHECK_FALSE(dates[0].binary);
    CHECK(*dates[0].params[1] ==
          R"({"2026-12-07","2026-12-07","2026-12-07","2026-12-07","2026-12-07"})");
  }
  SECTION("a few rows are a VALUES list of text parameters") {
    std::vector<detail::DeferredWrite> out;
    detail::AddMultiRow(out, "test", "INSERT INTO t SELECT * FROM ", casts, " AS v",
                        std::vector<detail::Row>(2, detail::Row{"a", "1", "{}"}), false);
    REQUIRE(out.size() == 1);
    CHECK_FALSE(out[0].binary);
    CHECK(out[0].params.size() == 6);
  }
}

CaseRecord NewCase(int n) {
  CaseRecord c;
  c.procedure = "p";
  c.version = 1;
  c.data = R"({"n":)" + std::to_string(n) + "}";
  c.state = R"({"tokens":[]})";
  c.agency = "a";
  c.started_by = "t";
  c.started_at = c.updated_at = FromMicros(1'767'225'600'000'000);
  return c;
}

Result<CaseRecord> Read(Store& store, const std::string& id) {
  std::optional<CaseRecord> found;
  Status status = store.Read([&](StoreTx& tx) {
    auto got = tx.GetCase(id);
    if (!got) return got.error();
    found = *got;
    return Status::Ok();
  });
  if (!status.ok()) return status;
  return *found;
}

// The same statements again and again (prepared from their second run), across a connection
// the server closed (a new one has prepared nothing) and past the per-connection bound.
WF_POSTGRES_TEST_CASE("prepared statements survive a new connection and many texts",
                      "[engine][store]", db) {
  auto opened = Store::Open(db.url(), 1);
  REQUIRE(opened.has_value());
  Store& store = **opened;
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    std::string id;
    REQUIRE(store
                .Transact([&](StoreTx& tx) {
                  auto inserted = tx.InsertCase(NewCase(i));
                  if (!inserted) return inserted.error();
                  id = *inserted;
                  return Status::Ok();
                })
                .ok());
    ids.push_back(id);
  }
  for (int round = 0; round < 3; ++round) {
    for (size_t i = 0; i < ids.size(); ++i) {
      auto got = Read(store, ids[i]);
      REQUIRE(got.has_value());
      CHECK(got->data == R"({"n": )" + std::to_string(i) + "}");
    }
  }
  CHECK(db.TerminateOtherConnections() >= 1);
  // The first use of the dead connection may report it lost; the store then connects anew.
  auto again = Read(store, ids[0]);
  if (!again) {
    CHECK(again.error().code() == ErrorCode::kUnavailable);
    again = Read(store, ids[0]);
  }
  REQUIRE(again.has_value());
  for (int round = 0; round < 3; ++round) REQUIRE(Read(store, ids[1]).has_value());
  // More distinct texts than a connection prepares, pipelined: multi-row INSERTs of every
  // length up to 300 rows, each twice.
  int64_t rows = 0;
  for (int n = 1; n <= 300; ++n) {
    for (int k = 0; k < 2; ++k) {
      std::vector<NewWork> work;
      for (int i = 0; i < n; ++i) {
        work.push_back(NewWork{ids[0], "event", "s", i, R"({"i":)" + std::to_string(i) + "}",
                               FromMicros(1'767'225'600'000'000)});
      }
      Status status = store.Transact([&](StoreTx& tx) {
        tx.DeferWrites();
        return tx.InsertWork(work);
      });
      INFO(status.message());
      REQUIRE(status.ok());
      rows += n;
    }
  }
  CHECK(db.QueryInt("SELECT COUNT(*) FROM work") == rows);
}

// A connection of the test's own to the test database, closed at the end of the scope.
struct RawConnection {
  explicit RawConnection(const std::string& url) : conn(PQconnectdb(url.c_str())) {}
  ~RawConnection() { PQfinish(conn); }
  PGconn* conn;
};

// True once `listener` has received a notification, polled until `deadline`.
bool Notified(PGconn* listener, std::chrono::steady_clock::time_point deadline) {
  while (std::chrono::steady_clock::now() < deadline) {
    REQUIRE(PQconsumeInput(listener) == 1);
    if (PGnotify* notify = PQnotifies(listener)) {
      PQfreemem(notify);
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return false;
}

// The wake-up's NOTIFY goes in a transaction of its own after the COMMIT (store_internal.hpp,
// WakeEnginesSql): the commit's error is the caller's; the wake-up's is not.
WF_POSTGRES_TEST_CASE("a commit wakes the engines after it, and stands when the wake-up fails",
                      "[engine][store][wakeup]", db) {
  db.Execute("CREATE TABLE marks (n int UNIQUE DEFERRABLE INITIALLY DEFERRED)");
  RawConnection writer(db.url()), listener(db.url());
  REQUIRE(PQstatus(writer.conn) == CONNECTION_OK);
  REQUIRE(PQstatus(listener.conn) == CONNECTION_OK);
  detail::ExecSimple(listener.conn, "LISTEN wf_test");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);

  detail::ExecSimple(writer.conn, "BEGIN; INSERT INTO marks VALUES (1)");
  detail::CommitAndWake(writer.conn, "NOTIFY wf_test");
  CHECK(db.QueryInt("SELECT COUNT(*) FROM marks") == 1);
  CHECK(PQtransactionStatus(writer.conn) == PQTRANS_IDLE);
  CHECK(Notified(listener.conn, deadline));

  // A wake-up that fails: the commit stands and the connection is idle again.
  detail::ExecSimple(writer.conn, "BEGIN; INSERT INTO marks VALUES (2)");
  CHECK_NOTHROW(detail::CommitAndWake(writer.conn, "SELECT 1 / 0"));
  CHECK(db.QueryInt("SELECT COUNT(*) FROM marks") == 2);
  CHECK(PQtransactionStatus(writer.conn) == PQTRANS_IDLE);

  // A COMMIT that fails (the deferred unique check) is thrown, and nothing after it runs.
  detail::ExecSimple(writer.conn, "BEGIN; INSERT INTO marks VALUES (3), (3)");
  CHECK_THROWS(detail::CommitAndWake(writer.conn, "INSERT INTO marks VALUES (4)"));
  CHECK(db.QueryInt("SELECT COUNT(*) FROM marks") == 2);
  CHECK(PQtransactionStatus(writer.conn) == PQTRANS_IDLE);
  detail::ExecSimple(writer.conn, "INSERT INTO marks VALUES (5)");
  CHECK(db.QueryInt("SELECT COUNT(*) FROM marks") == 3);

  // The pipelined commit (a deferred-writes transaction that enqueues work) wakes them too.
  detail::ExecSimple(listener.conn, "LISTEN wf_work");
  auto opened = Store::Open(db.url(), 1);
  REQUIRE(opened.has_value());
  Store& store = **opened;
  std::string id;
  REQUIRE(store
              .Transact([&](StoreTx& tx) {
                auto inserted = tx.InsertCase(NewCase(1));
                if (!inserted) return inserted.error();
                id = *inserted;
                return Status::Ok();
              })
              .ok());
  while (Notified(listener.conn, std::chrono::steady_clock::now())) {
  }
  REQUIRE(store
              .TransactPipelined([&](StoreTx& tx) {
                tx.DeferWrites();
                return tx.InsertWork(
                    {NewWork{id, "event", "s", 1, "{}", FromMicros(1'767'225'600'000'000)}});
              })
              .ok());
  CHECK(db.QueryInt("SELECT COUNT(*) FROM work") == 1);
  CHECK(Notified(listener.conn, deadline));
}

// wf_act recorded the act and notified inside the clerk's transaction, holding NOTIFY's
// cluster-wide lock through the commit's flush; since version 15 the act's transaction wakes
// the engines after its COMMIT, as every other transaction that makes work does.
WF_POSTGRES_TEST_CASE("a clerk's act wakes the engines after its commit, not inside it",
                      "[engine][store][wakeup]", db) {
  auto opened = Store::Open(db.url(), 1);
  REQUIRE(opened.has_value());
  Store& store = **opened;
  CHECK(db.QueryInt("SELECT COUNT(*) FROM pg_proc WHERE proname = 'wf_act'") == 1);
  CHECK(db.QueryInt("SELECT COUNT(*) FROM pg_proc WHERE proname = 'wf_act'"
                    " AND prosrc LIKE '%notify%'") == 0);
  // The superuser counts as a delegate, who may start a procedure of an agency without rules.
  db.Execute(
      "INSERT INTO procedures (name, version, content_hash, source, agency, deployed_at)"
      " VALUES ('p', 1, 'h', 'procedure: p', 'town', 0)");
  RawConnection listener(db.url());
  REQUIRE(PQstatus(listener.conn) == CONNECTION_OK);
  detail::ExecSimple(listener.conn, "LISTEN wf_work");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);

  ActRecord act;
  act.kind = "start";
  act.procedure = "p";
  act.payload = R"({"data": {}})";
  std::int64_t id = 0;
  REQUIRE(store
              .Transact([&](StoreTx& tx) {
                auto submitted = tx.SubmitAct(act);
                if (!submitted) return submitted.error();
                id = *submitted;
                return Status::Ok();
              })
              .ok());
  CHECK(id > 0);
  CHECK(db.QueryInt("SELECT COUNT(*) FROM acts WHERE status = 'pending'") == 1);
  CHECK(Notified(listener.conn, deadline));

  // An act refused in the database wakes nobody: its transaction rolls back.
  act.procedure = "missing";
  Status refused = store.Transact([&](StoreTx& tx) {
    auto submitted = tx.SubmitAct(act);
    return submitted ? Status::Ok() : submitted.error();
  });
  CHECK(refused.code() == ErrorCode::kNotFound);
  CHECK_FALSE(Notified(listener.conn, std::chrono::steady_clock::now() + std::chrono::seconds(1)));
}

}  // namespace
}  // namespace wf::engine
