// The MySQL engine's threads: one writer thread with its own connection,
// which batches queued writes into one transaction (group commit), a pool of
// reader threads each with its own connection, and a completion thread that
// runs the writes' callbacks in commit order. No call blocks its caller:
// io threads only queue.
//
// Write batches: the writer takes what is queued (at most batch_max), applies
// the writes one by one in one transaction, and commits; writes that arrive
// meanwhile form the next batch. A write that fails without changing a row
// fails alone; one that fails after changing rows makes the writer roll the
// batch back and apply it again with a savepoint around each write. A lock
// deadlock or lock wait timeout (another node holds the rows) rolls the batch
// back and runs it again, up to kMaxAttempts times. A lost connection fails
// the batch with kUnavailable if anything may have reached the server's
// commit; if it was lost before the batch sent anything (a pooled connection
// that died while idle), the batch runs again on a new connection. A failed
// commit fails every write of the batch with kUnavailable: whether it
// committed is unknown, and the message service's dedup makes the client's
// retry safe.
//
// Connections are reopened on demand after a failure, at most once per
// back-off period (100 ms doubling to 2 s); meanwhile calls fail at once with
// kUnavailable instead of waiting for a connect timeout each.
//
// Thread-safe: Write and Read may be called from any thread.
#pragma once

#include <any>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <type_traits>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "store/common.h"
#include "store/mysql/connection.h"
#include "store/mysql/options.h"

namespace mpim::store::mysql {

namespace internal {
inline const core::Status& StatusOf(const core::Status& s) { return s; }
template <typename T>
const core::Status& StatusOf(const core::StatusOr<T>& s) {
  return s.status();
}
}  // namespace internal

// A connection, reopened after it broke (with back-off between attempts).
class ConnectionSlot {
 public:
  explicit ConnectionSlot(const MysqlOptions& options) : options_(options) {}
  // The open connection, or kUnavailable.
  core::StatusOr<Connection*> Get();
  // Drops the connection (the next Get opens a new one).
  void Reset() { conn_.reset(); }

 private:
  const MysqlOptions& options_;
  std::unique_ptr<Connection> conn_;
  std::chrono::steady_clock::time_point next_attempt_{};
  std::chrono::milliseconds backoff_{0};
};

class Executor {
 public:
  // Checks that the database answers (one connection), and starts the
  // threads.
  static core::StatusOr<std::unique_ptr<Executor>> Start(const MysqlOptions& options);
  ~Executor();

  // A write: `body` runs on the writer thread inside the batch transaction.
  // It may run more than once (when its batch runs again), so it must not
  // move out of its captures and must have no side effects but SQL. `done`
  // gets body's last result after the commit, or the batch's error, on the
  // completion thread, in commit order.
  template <typename R>
  void Write(std::type_identity_t<absl::AnyInvocable<R(Connection&)>> body,
             absl::AnyInvocable<void(R) &&> done) {
    Enqueue(std::make_unique<TypedWrite<R>>(std::move(body), std::move(done), false));
  }

  // Like Write, for a body that defers row writes to the batch hook (the
  // message store's inserts and conversation heads, written a batch at a
  // time). `tag` tells the hook ahead what the body will do (BatchHook::
  // Begin). Before any plain write's body runs, and before the commit, the
  // hook writes what was deferred.
  template <typename R>
  void WriteDeferring(std::any tag, std::type_identity_t<absl::AnyInvocable<R(Connection&)>> body,
                      absl::AnyInvocable<void(R) &&> done) {
    Enqueue(
        std::make_unique<TypedWrite<R>>(std::move(body), std::move(done), true, std::move(tag)));
  }

  // State that deferring writes keep across a batch, on the writer thread.
  class BatchHook {
   public:
    virtual ~BatchHook() = default;
    // Each attempt at a batch starts here, with the tags of its deferring
    // writes in order. `isolated`: the attempt runs each write in its own
    // savepoint (an earlier attempt failed on a write), so nothing may be
    // deferred past a write's own body.
    virtual core::Status Begin(Connection& conn, const std::vector<const std::any*>& tags,
                               bool isolated) = 0;
    // Writes what was deferred (inside the batch transaction). A failure
    // other than a lost connection or a lock conflict makes the executor run
    // the batch again isolated.
    virtual core::Status Flush(Connection& conn) = 0;
    // The attempt was rolled back: forget what it deferred.
    virtual void Discard() = 0;
    virtual void Committed() = 0;
  };
  // At most one hook; set before the first write; it must outlive Close().
  void SetBatchHook(BatchHook* hook) { hook_ = hook; }

  // A read: `body` runs on a reader thread (each statement sees what was
  // committed when it started: READ COMMITTED); `done` gets its result on
  // that thread. A read that found its pooled connection dead (failing at
  // once) runs once more on a new one.
  template <typename R>
  void Read(std::type_identity_t<absl::AnyInvocable<R(Connection&)>> body,
            absl::AnyInvocable<void(R) &&> done) {
    const auto quick = std::chrono::milliseconds(options_.timeout_ms / 2);
    EnqueueRead(
        [body = std::move(body), done = std::move(done), quick](ConnectionSlot* slot) mutable {
          if (slot == nullptr) return std::move(done)(R(absl::UnavailableError("store closed")));
          for (int attempt = 0;; ++attempt) {
            auto conn = slot->Get();
            if (!conn.ok()) return std::move(done)(R(conn.status()));
            const auto started = std::chrono::steady_clock::now();
            R result = body(**conn);
            const bool broken = (*conn)->broken();
            if (!broken) (void)(*conn)->Rollback();  // ends the read's transaction
            if (broken) slot->Reset();
            // Once more only after a connection that failed at once (died while
            // idle), not after a timeout.
            const bool stale = broken && std::chrono::steady_clock::now() - started < quick;
            if (!stale || attempt > 0 || internal::StatusOf(result).ok()) {
              return std::move(done)(std::move(result));
            }
          }
        });
  }

  // Batch runs after a deadlock or lock wait timeout, at most.
  static constexpr int kMaxAttempts = 5;

  void Close();
  int64_t NowMs() const { return now_(); }

 private:
  class WriteOp {
   public:
    virtual ~WriteOp() = default;
    virtual bool defers() const = 0;
    virtual const std::any* tag() const = 0;
    virtual core::Status Apply(Connection& conn) = 0;
    virtual void Complete(const core::Status& failure) = 0;
  };

  template <typename R>
  class TypedWrite final : public WriteOp {
   public:
    TypedWrite(absl::AnyInvocable<R(Connection&)> body, absl::AnyInvocable<void(R) &&> done,
               bool defers, std::any tag = {})
        : body_(std::move(body)), done_(std::move(done)), defers_(defers), tag_(std::move(tag)) {}
    bool defers() const override { return defers_; }
    const std::any* tag() const override { return &tag_; }
    core::Status Apply(Connection& conn) override {
      result_.emplace(body_(conn));
      return internal::StatusOf(*result_);
    }
    void Complete(const core::Status& failure) override {
      if (!failure.ok() || !result_.has_value()) {
        std::move(done_)(R(failure.ok() ? absl::InternalError("write not applied") : failure));
      } else {
        std::move(done_)(std::move(*result_));
      }
    }

   private:
    absl::AnyInvocable<R(Connection&)> body_;
    absl::AnyInvocable<void(R) &&> done_;
    const bool defers_;
    const std::any tag_;
    std::optional<R> result_;
  };

  // Runs with its thread's slot, or nullptr once the store is closed.
  using ReadTask = absl::AnyInvocable<void(ConnectionSlot*)>;
  using Batch = std::vector<std::unique_ptr<WriteOp>>;

  explicit Executor(const MysqlOptions& options);
  void Enqueue(std::unique_ptr<WriteOp> op);
  void EnqueueRead(ReadTask task);
  void WriterLoop();
  void ReaderLoop();
  void CompletionLoop();
  void RunBatch(Batch batch);
  // One attempt at the batch: applies and commits. OK, or why not.
  core::Status TryBatch(Connection& conn, Batch& batch, bool isolated, bool* commit_sent);
  core::Status FlushBefore(Connection& conn, const WriteOp* op);
  void CompleteLater(Batch batch, core::Status status, CommitInfo commit = {});

  const MysqlOptions options_;
  const NowMsFn now_;
  BatchHook* hook_ = nullptr;
  ConnectionSlot writer_slot_;
  bool writes_failing_ = false;  // writer thread only: the last batch failed

  std::mutex write_mu_;
  std::condition_variable write_cv_;
  std::deque<std::unique_ptr<WriteOp>> write_queue_;
  bool closing_ = false;

  std::mutex read_mu_;
  std::condition_variable read_cv_;
  std::deque<ReadTask> read_queue_;
  bool read_closing_ = false;

  struct Finished {
    Batch ops;
    core::Status status;
    CommitInfo commit;
  };
  std::mutex done_mu_;
  std::condition_variable done_cv_;
  std::deque<Finished> done_queue_;
  bool done_closing_ = false;

  std::mutex close_mu_;
  std::thread writer_thread_;
  std::thread completion_thread_;
  std::vector<std::thread> reader_threads_;
};

}  // namespace mpim::store::mysql
