// The SQLite engine's threads: one writer thread owning the only write
// connection, which batches queued writes into one transaction (group
// commit), and a pool of reader threads, each owning one read connection
// (WAL lets them read while the writer writes).
//
// Write batches: the writer takes the queued writes, opens a transaction and
// applies them one by one, taking in writes that arrive meanwhile, and
// commits when the batch holds batch_max writes, when it has been open for
// batch_delay, or when no write is queued; while writes arrive steadily
// (some came in during the last commit) it waits for more instead of
// committing a small batch: up to batch_delay / 5 for each next write. After the commit it hands
// the whole batch to the completion thread, which runs the callbacks in order, each with its own
// result: the writer only writes, and whatever a callback does (fan-out, posting to sessions) never
// delays the next batch. A write that fails without changing anything fails alone; one that fails
// after changing rows makes the writer roll the batch back and apply it again with a savepoint
// around each write, so that it fails alone too. A failed commit (disk full, I/O error) fails every
// write of the batch with kUnavailable; the next batch tries again, so the writer recovers by
// itself once the cause is gone.
//
// Checkpoints (copying the WAL back into the database file) run on a third
// thread with its own connection, started when kCheckpointPages frames of the
// WAL are not copied back yet, so the writer does not stop for them. Under
// steady writes such a passive checkpoint never finds the WAL complete (the
// writer appended more while it ran), and SQLite only starts the WAL over
// from its beginning once every frame is copied back: left alone, the WAL
// grows without end (seen: 460 MB for a 24 MB database). So when the
// checkpointer has left fewer than kCatchUpPages frames behind, the writer
// copies those itself between two batches, and its next batch starts the WAL
// over. The checkpointer flushes the WAL and the database file itself after
// its passes, so that the syncs of the writer's catch-up (SQLite syncs the
// database file when a checkpoint copied the last frame) find little to
// write. Should the checkpointer be busy every time (large commits), the
// writer waits for it once the WAL holds kMaxWalPages frames, and catches up:
// the WAL stays below about kMaxWalPages frames plus one batch, except while a
// long read holds an old snapshot (nothing past it can be copied back; the
// checkpointer stops when a pass makes no progress, so writes go on).
//
// Thread-safe: Write and Read may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

#include "store/common.h"
#include "store/sqlite/connection.h"
#include "store/sqlite/options.h"

namespace mpim::store::sqlite {

namespace internal {
inline const core::Status& StatusOf(const core::Status& s) { return s; }
template <typename T>
const core::Status& StatusOf(const core::StatusOr<T>& s) {
  return s.status();
}
}  // namespace internal

class Executor {
 public:
  // Opens the write connection (the schema must be migrated already) and the
  // reader connections, and starts the threads.
  static core::StatusOr<std::unique_ptr<Executor>> Start(const SqliteOptions& options);
  ~Executor();

  // A write: `body` runs on the writer thread inside the batch transaction.
  // It may run more than once (when its batch is applied again), so it must
  // not move out of its captures, and must leave no side effects but SQL.
  // `done` gets body's result after the commit, or the commit's error, on
  // the completion thread (in commit order: a write's callback runs after
  // those of every write committed before it).
  template <typename R>
  void Write(std::type_identity_t<absl::AnyInvocable<R(Connection&)>> body,
             absl::AnyInvocable<void(R) &&> done) {
    Enqueue(std::make_unique<TypedWrite<R>>(std::move(body), std::move(done)));
  }

  // Like Write, for a body that defers some of its row updates to the batch
  // hook (the message store's last_seq per conversation, written once per
  // batch instead of once per message). Before any plain Write's body runs,
  // and before the commit, the hook writes what was deferred, so every
  // plain write and every reader sees the same rows as without deferral.
  template <typename R>
  void WriteDeferring(std::type_identity_t<absl::AnyInvocable<R(Connection&)>> body,
                      absl::AnyInvocable<void(R) &&> done) {
    Enqueue(std::make_unique<TypedWrite<R>>(std::move(body), std::move(done), /*defers=*/true));
  }

  // State that deferring writes keep across a batch, on the writer thread.
  class BatchHook {
   public:
    virtual ~BatchHook() = default;
    // Writes what was deferred (inside the batch transaction).
    virtual core::Status Flush(Connection& conn) = 0;
    // The batch transaction was rolled back: forget what it deferred.
    virtual void Discard() = 0;
    // The batch committed.
    virtual void Committed() = 0;
  };
  // At most one hook; set before the first write. The hook must outlive
  // Close().
  void SetBatchHook(BatchHook* hook) {
    std::lock_guard lock(write_mu_);
    hook_ = hook;
  }

  // A read: `body` runs on a reader thread inside a read transaction (one
  // consistent snapshot); `done` gets its result on that thread.
  template <typename R>
  void Read(std::type_identity_t<absl::AnyInvocable<R(Connection&)>> body,
            absl::AnyInvocable<void(R) &&> done) {
    auto task = [body = std::move(body), done = std::move(done)](Connection* conn,
                                                                 core::Status status) mutable {
      if (status.ok()) {
        status = conn->Exec("BEGIN");
        if (status.ok()) {
          R result = body(*conn);
          status = conn->Exec("COMMIT");
          if (status.ok()) {
            std::move(done)(std::move(result));
            return;
          }
          (void)conn->Exec("ROLLBACK");
        }
      }
      std::move(done)(std::move(status));
    };
    EnqueueRead(std::move(task));
  }

  // WAL frames not yet copied back that wake the checkpointer.
  static constexpr int kCheckpointPages = 1000;
  // Frames not yet copied back that the writer copies itself (see above):
  // few, since the writer's next batch waits for that copy (at 12,000
  // sends/s: 1,000 frames 3.7 ms per catch-up, 200 frames 2.3 ms).
  static constexpr int kCatchUpPages = 200;
  // WAL frames at which the writer waits for the checkpointer to catch up.
  static constexpr int kMaxWalPages = 8 * kCheckpointPages;

  // Stops taking work, finishes what is queued, joins the threads. Idempotent.
  void Close();

  // The store's clock.
  int64_t NowMs() const { return now_(); }

  // True after a write failed for lack of storage, until a commit succeeds.
  bool storage_failed() const { return storage_failed_.load(std::memory_order_relaxed); }

 private:
  class WriteOp {
   public:
    virtual ~WriteOp() = default;
    // True for WriteDeferring.
    virtual bool defers() const = 0;
    // Runs the body; returns its status.
    virtual core::Status Apply(Connection& conn) = 0;
    // Delivers the body's last result, or `failure` if not OK.
    virtual void Complete(const core::Status& failure) = 0;
  };

  template <typename R>
  class TypedWrite final : public WriteOp {
   public:
    TypedWrite(absl::AnyInvocable<R(Connection&)> body, absl::AnyInvocable<void(R) &&> done,
               bool defers = false)
        : body_(std::move(body)), done_(std::move(done)), defers_(defers) {}
    bool defers() const override { return defers_; }
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
    std::optional<R> result_;
  };

  // A read task gets its thread's connection, or an error if there is none.
  using ReadTask = absl::AnyInvocable<void(Connection*, core::Status)>;

  Executor(const SqliteOptions& options, std::unique_ptr<Connection> writer,
           std::unique_ptr<Connection> checkpointer,
           std::vector<std::unique_ptr<Connection>> readers);

  // sqlite3_wal_hook: called by the writer after each commit.
  static int OnWalCommit(void* self, sqlite3* db, const char* name, int wal_pages);
  void CheckpointLoop();
  // After a commit: copies the WAL's last frames back if the checkpointer
  // left only a few, so that the next batch starts the WAL over.
  void CatchUpCheckpoint();

  void Enqueue(std::unique_ptr<WriteOp> op);
  void EnqueueRead(ReadTask task);
  void WriterLoop();
  void ReaderLoop(Connection* conn);
  // Applies and commits one batch starting with what is queued; completes
  // every write of it.
  void RunBatch();
  // Moves up to `max` queued writes into `batch`; false if none was queued.
  bool TakeQueued(std::vector<std::unique_ptr<WriteOp>>& batch, size_t max);
  // TakeQueued at `until`.
  bool WaitQueued(std::vector<std::unique_ptr<WriteOp>>& batch, size_t max,
                  std::chrono::steady_clock::time_point until);
  // Applies the writes with a savepoint around each one.
  core::Status ApplyIsolated(std::vector<std::unique_ptr<WriteOp>>& batch);
  void FailAll(std::vector<std::unique_ptr<WriteOp>>& batch, const core::Status& status);
  // Runs the hook's Flush before `op` unless op defers too.
  core::Status FlushBefore(const WriteOp* op);
  // Hands a finished batch to the completion thread: each write completes
  // with its own result if `status` is OK, else with `status`.
  void CompleteLater(std::vector<std::unique_ptr<WriteOp>> batch, core::Status status,
                     CommitInfo commit = {});
  void CompletionLoop();

  struct Finished {
    std::vector<std::unique_ptr<WriteOp>> ops;
    core::Status status;
    CommitInfo commit;
  };

  const SqliteOptions options_;
  const NowMsFn now_;
  std::unique_ptr<Connection> writer_conn_;
  std::unique_ptr<Connection> checkpoint_conn_;
  std::vector<std::unique_ptr<Connection>> reader_conns_;
  std::atomic<bool> storage_failed_{false};

  std::mutex write_mu_;  // guards write_queue_, closing_ and writer_idle_
  std::condition_variable write_cv_;
  std::deque<std::unique_ptr<WriteOp>> write_queue_;
  bool closing_ = false;
  bool writer_idle_ = false;   // the writer waits on write_cv_ for a first write
  BatchHook* hook_ = nullptr;  // set before the first write
  // Writes were queued when the last batch had committed (writer thread
  // only).
  bool queued_during_commit_ = false;

  std::mutex read_mu_;  // guards read_queue_ and read_closing_
  std::condition_variable read_cv_;
  std::deque<ReadTask> read_queue_;
  bool read_closing_ = false;

  std::mutex done_mu_;  // guards done_queue_ and done_closing_
  std::condition_variable done_cv_;
  std::deque<Finished> done_queue_;
  bool done_closing_ = false;

  std::mutex checkpoint_mu_;  // guards checkpoint_wanted_ and checkpoint_closing_
  std::condition_variable checkpoint_cv_;
  bool checkpoint_wanted_ = false;
  bool checkpoint_closing_ = false;
  // Frames in the WAL after the writer's last commit, and how many of them
  // the last checkpoint copied back.
  std::atomic<int> wal_frames_{0};
  std::atomic<int> wal_backfilled_{0};
  bool checkpointing_ = false;  // the checkpointer is in a pass; guarded by checkpoint_mu_
  std::condition_variable checkpoint_idle_cv_;

  std::mutex close_mu_;  // serializes Close
  std::thread writer_thread_;
  std::thread completion_thread_;
  std::thread checkpoint_thread_;
  std::vector<std::thread> reader_threads_;
};

}  // namespace mpim::store::sqlite
