#include "store/sqlite/executor.h"

#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include <chrono>
#include <string>

#include "core/logging.h"
#include "core/metrics.h"

namespace mpim::store::sqlite {
namespace {

core::Status ClosedError() { return absl::UnavailableError("store closed"); }

const core::Logger& Log() {
  static const core::Logger log("store");
  return log;
}

// Commits and the writes they carried: their ratio is the group commit's
// batch size.
struct CommitMetrics {
  core::Counter& commits;
  core::Counter& writes;
  core::Counter& wal_frames;
  core::Histogram& catch_up;
};
CommitMetrics& Commits() {
  static CommitMetrics m{
      core::DefaultRegistry()
          .Counter("mpim_store_commits_total", "Write transactions committed by the store.")
          .With({}),
      core::DefaultRegistry()
          .Counter("mpim_store_committed_writes_total", "Writes carried by committed transactions.")
          .With({}),
      core::DefaultRegistry()
          .Counter("mpim_store_wal_frames_total",
                   "Pages written to the write-ahead log by committed transactions.")
          .With({}),
      core::DefaultRegistry()
          .Histogram("mpim_store_writer_checkpoint_seconds",
                     "Time the writer spent between two batches waiting for the checkpointer "
                     "or copying the last WAL frames back itself.")
          .With({})};
  return m;
}

// The database file and its WAL, opened a second time (read-only) to flush
// them. SQLite syncs the WAL before a checkpoint copies from it, and the
// database file when a checkpoint copied the WAL's last frame, which is the
// writer's catch-up (synchronous = normal): that sync would write back every
// page the checkpointer's passes copied before, megabytes, while the writer
// waits (8.6 ms per catch-up on average at 12,000 sends/s, up to 25 ms).
// Flushed by the checkpointer, the writer's syncs find little to write.
class CheckpointFiles {
 public:
  explicit CheckpointFiles(const char* db_path) {
    if (db_path == nullptr || *db_path == '\0') return;
    db_ = open(db_path, O_RDONLY | O_CLOEXEC);
    wal_ = open((std::string(db_path) + "-wal").c_str(), O_RDONLY | O_CLOEXEC);
  }
  ~CheckpointFiles() {
    if (db_ >= 0) close(db_);
    if (wal_ >= 0) close(wal_);
  }
  CheckpointFiles(const CheckpointFiles&) = delete;
  CheckpointFiles& operator=(const CheckpointFiles&) = delete;

  void Flush() const {
    if (wal_ >= 0) (void)fdatasync(wal_);
    if (db_ >= 0) (void)fdatasync(db_);
  }

 private:
  int db_ = -1;
  int wal_ = -1;
};

void NameThread(const std::string& name) {
  pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
}

}  // namespace

core::StatusOr<std::unique_ptr<Executor>> Executor::Start(const SqliteOptions& options) {
  if (options.batch_max < 1) return absl::InvalidArgumentError("batch_max must be >= 1");
  if (options.reader_threads < 1) return absl::InvalidArgumentError("reader_threads must be >= 1");
  MPIM_ASSIGN_OR_RETURN(auto writer, Connection::Open(options, /*writer=*/true));
  MPIM_ASSIGN_OR_RETURN(auto checkpointer, Connection::Open(options, /*writer=*/true));
  std::vector<std::unique_ptr<Connection>> readers;
  for (int i = 0; i < options.reader_threads; ++i) {
    MPIM_ASSIGN_OR_RETURN(auto reader, Connection::Open(options, /*writer=*/false));
    readers.push_back(std::move(reader));
  }
  return std::unique_ptr<Executor>(
      new Executor(options, std::move(writer), std::move(checkpointer), std::move(readers)));
}

Executor::Executor(const SqliteOptions& options, std::unique_ptr<Connection> writer,
                   std::unique_ptr<Connection> checkpointer,
                   std::vector<std::unique_ptr<Connection>> readers)
    : options_(options),
      now_(options.now ? options.now : NowMsFn(SystemNowMs)),
      writer_conn_(std::move(writer)),
      checkpoint_conn_(std::move(checkpointer)),
      reader_conns_(std::move(readers)) {
  // Replaces SQLite's auto-checkpoint, which would run inside the writer's
  // commits.
  sqlite3_wal_hook(writer_conn_->raw(), &Executor::OnWalCommit, this);
  checkpoint_thread_ = std::thread([this] {
    NameThread("store-ckpt");
    CheckpointLoop();
  });
  completion_thread_ = std::thread([this] {
    NameThread("store-done");
    CompletionLoop();
  });
  writer_thread_ = std::thread([this] {
    NameThread("store-writer");
    WriterLoop();
  });
  for (size_t i = 0; i < reader_conns_.size(); ++i) {
    reader_threads_.emplace_back([this, i] {
      NameThread("store-read-" + std::to_string(i));
      ReaderLoop(reader_conns_[i].get());
    });
  }
}

Executor::~Executor() { Close(); }

void Executor::Close() {
  std::lock_guard close_lock(close_mu_);
  {
    std::lock_guard lock(write_mu_);
    closing_ = true;
  }
  write_cv_.notify_all();
  {
    std::lock_guard lock(read_mu_);
    read_closing_ = true;
  }
  read_cv_.notify_all();
  if (writer_thread_.joinable()) writer_thread_.join();
  {
    std::lock_guard lock(done_mu_);
    done_closing_ = true;
  }
  done_cv_.notify_all();
  // Runs what the writer finished before it stopped.
  if (completion_thread_.joinable()) completion_thread_.join();
  for (auto& t : reader_threads_) {
    if (t.joinable()) t.join();
  }
  {
    std::lock_guard lock(checkpoint_mu_);
    checkpoint_closing_ = true;
  }
  checkpoint_cv_.notify_all();
  if (checkpoint_thread_.joinable()) checkpoint_thread_.join();
  reader_conns_.clear();
  checkpoint_conn_.reset();
  if (writer_conn_) {
    // Leave a clean database behind: fold the WAL back into the file.
    (void)writer_conn_->ExecScript("PRAGMA wal_checkpoint(TRUNCATE);");
    writer_conn_.reset();
  }
}

void Executor::Enqueue(std::unique_ptr<WriteOp> op) {
  bool wake = false;
  {
    std::lock_guard lock(write_mu_);
    if (!closing_) {
      write_queue_.push_back(std::move(op));
      op = nullptr;
      wake = writer_idle_;
    }
  }
  if (op) {
    op->Complete(ClosedError());
    return;
  }
  if (wake) write_cv_.notify_one();
}

void Executor::EnqueueRead(ReadTask task) {
  {
    std::lock_guard lock(read_mu_);
    if (!read_closing_) {
      read_queue_.push_back(std::move(task));
      task = nullptr;
    }
  }
  if (task) {
    task(nullptr, ClosedError());
    return;
  }
  read_cv_.notify_one();
}

void Executor::ReaderLoop(Connection* conn) {
  for (;;) {
    ReadTask task;
    {
      std::unique_lock lock(read_mu_);
      read_cv_.wait(lock, [this] { return !read_queue_.empty() || read_closing_; });
      if (read_queue_.empty()) return;
      task = std::move(read_queue_.front());
      read_queue_.pop_front();
    }
    task(conn, core::Status());
  }
}

int Executor::OnWalCommit(void* self, sqlite3* /*db*/, const char* /*name*/, int wal_pages) {
  auto* exec = static_cast<Executor*>(self);
  const int before = exec->wal_frames_.exchange(wal_pages, std::memory_order_relaxed);
  // Fewer frames than before: this commit started the WAL over.
  if (wal_pages < before) exec->wal_backfilled_.store(0, std::memory_order_relaxed);
  Commits().wal_frames.Add(
      static_cast<double>(wal_pages < before ? wal_pages : wal_pages - before));
  if (wal_pages - exec->wal_backfilled_.load(std::memory_order_relaxed) >= kCheckpointPages) {
    {
      std::lock_guard lock(exec->checkpoint_mu_);
      exec->checkpoint_wanted_ = true;
    }
    exec->checkpoint_cv_.notify_one();
  }
  return SQLITE_OK;
}

void Executor::CheckpointLoop() {
  CheckpointFiles files(sqlite3_db_filename(checkpoint_conn_->raw(), "main"));
  for (;;) {
    {
      std::unique_lock lock(checkpoint_mu_);
      checkpoint_cv_.wait(lock, [this] { return checkpoint_wanted_ || checkpoint_closing_; });
      if (checkpoint_closing_) return;
      checkpoint_wanted_ = false;
      checkpointing_ = true;
    }
    // PASSIVE: copies what it can without waiting for readers or the writer.
    // Passes follow each other until the writer can copy the rest (each pass
    // is shorter than the one before: it copies what came during it), or
    // until a pass copies nothing more (a long read holds an old snapshot,
    // whose pages must stay; the next commit wakes us again). A failure
    // (disk full) is retried at the next wake-up.
    for (int before = -1;;) {
      int log = 0;
      int copied = 0;
      const int rc = sqlite3_wal_checkpoint_v2(checkpoint_conn_->raw(), nullptr,
                                               SQLITE_CHECKPOINT_PASSIVE, &log, &copied);
      if (rc != SQLITE_OK || log < 0) break;
      wal_backfilled_.store(copied, std::memory_order_relaxed);
      if (log - copied <= kCatchUpPages || copied <= before) break;
      before = copied;
      std::lock_guard lock(checkpoint_mu_);
      if (checkpoint_closing_) break;
    }
    files.Flush();
    {
      std::lock_guard lock(checkpoint_mu_);
      checkpointing_ = false;
    }
    checkpoint_idle_cv_.notify_all();
  }
}

void Executor::CatchUpCheckpoint() {
  const int frames = wal_frames_.load(std::memory_order_relaxed);
  if (frames < kCheckpointPages) return;
  const auto start = std::chrono::steady_clock::now();
  bool waited = false;
  {
    std::unique_lock lock(checkpoint_mu_);
    if (checkpointing_) {
      if (frames < kMaxWalPages) return;
      checkpoint_idle_cv_.wait(lock, [this] { return !checkpointing_; });
      waited = true;
    }
  }
  const int backfilled = wal_backfilled_.load(std::memory_order_relaxed);
  if (frames != backfilled && (frames - backfilled <= kCatchUpPages || frames >= kMaxWalPages)) {
    // The checkpointer cannot start meanwhile without failing at once: one
    // checkpoint at a time (SQLite's checkpoint lock).
    int log = 0;
    int copied = 0;
    if (sqlite3_wal_checkpoint_v2(writer_conn_->raw(), nullptr, SQLITE_CHECKPOINT_PASSIVE, &log,
                                  &copied) == SQLITE_OK &&
        log >= 0) {
      wal_backfilled_.store(copied, std::memory_order_relaxed);
    }
  } else if (!waited) {
    return;
  }
  Commits().catch_up.Observe(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
}

void Executor::WriterLoop() {
  for (;;) {
    {
      std::unique_lock lock(write_mu_);
      writer_idle_ = true;
      write_cv_.wait(lock, [this] { return !write_queue_.empty() || closing_; });
      writer_idle_ = false;
      if (write_queue_.empty()) return;
    }
    RunBatch();
  }
}

bool Executor::TakeQueued(std::vector<std::unique_ptr<WriteOp>>& batch, size_t max) {
  std::lock_guard lock(write_mu_);
  if (write_queue_.empty()) return false;
  while (!write_queue_.empty() && batch.size() < max) {
    batch.push_back(std::move(write_queue_.front()));
    write_queue_.pop_front();
  }
  return true;
}

bool Executor::WaitQueued(std::vector<std::unique_ptr<WriteOp>>& batch, size_t max,
                          std::chrono::steady_clock::time_point until) {
  // A sleep, not a wait on write_cv_: writers do not wake a collecting
  // writer (that was a futex wake and a context switch per send: at 12,000
  // sends/s the writer ran 5,550 time slices a second, now 3,200).
  std::this_thread::sleep_until(until);
  return TakeQueued(batch, max);
}

void Executor::FailAll(std::vector<std::unique_ptr<WriteOp>>& batch, const core::Status& status) {
  if (IsStorageFailure(status) && !storage_failed_.exchange(true, std::memory_order_relaxed)) {
    Log().Warn("writes failing (refused as unavailable until a commit succeeds)",
               {{"error", std::string(status.message())}});
  }
  CompleteLater(std::move(batch), status);
}

void Executor::CompleteLater(std::vector<std::unique_ptr<WriteOp>> batch, core::Status status,
                             CommitInfo commit) {
  {
    std::lock_guard lock(done_mu_);
    done_queue_.push_back(Finished{std::move(batch), std::move(status), commit});
  }
  done_cv_.notify_one();
}

void Executor::CompletionLoop() {
  for (;;) {
    Finished finished;
    {
      std::unique_lock lock(done_mu_);
      done_cv_.wait(lock, [this] { return !done_queue_.empty() || done_closing_; });
      if (done_queue_.empty()) return;
      finished = std::move(done_queue_.front());
      done_queue_.pop_front();
    }
    CommitScope scope(finished.commit);
    for (auto& op : finished.ops) op->Complete(finished.status);
  }
}

core::Status Executor::FlushBefore(const WriteOp* op) {
  if (hook_ == nullptr || (op != nullptr && op->defers())) return core::Status();
  return hook_->Flush(*writer_conn_);
}

core::Status Executor::ApplyIsolated(std::vector<std::unique_ptr<WriteOp>>& batch) {
  Connection& conn = *writer_conn_;
  for (auto& op : batch) {
    MPIM_RETURN_IF_ERROR(FlushBefore(op.get()));
    MPIM_RETURN_IF_ERROR(conn.Exec("SAVEPOINT item"));
    if (!op->Apply(conn).ok()) {
      if (!conn.InTransaction()) return absl::UnavailableError("transaction lost");
      MPIM_RETURN_IF_ERROR(conn.Exec("ROLLBACK TO item"));
    }
    MPIM_RETURN_IF_ERROR(conn.Exec("RELEASE item"));
  }
  return core::Status();
}

void Executor::RunBatch() {
  using Clock = std::chrono::steady_clock;
  Connection& conn = *writer_conn_;
  const size_t max = static_cast<size_t>(options_.batch_max);
  const Clock::time_point start = Clock::now();
  const Clock::time_point deadline = start + options_.batch_delay;

  std::vector<std::unique_ptr<WriteOp>> batch;
  batch.reserve(std::min<size_t>(max, 1024));
  TakeQueued(batch, max);
  // Steady: writes came in while the writer committed the last batch, so
  // more are on their way. (Callers that wait for each write before the
  // next, send nothing during a commit: for them waiting would only add
  // latency.)
  const bool steady = queued_during_commit_;

  core::Status status = conn.Exec("BEGIN IMMEDIATE");
  if (!status.ok()) {
    FailAll(batch, status);
    return;
  }
  // Fast path: no savepoints. A write that fails having changed nothing
  // needs no undo; one that changed rows sends us to the isolated path.
  bool isolate = false;
  for (size_t i = 0; i < batch.size() && !isolate;) {
    status = FlushBefore(batch[i].get());
    if (!status.ok()) break;
    const int64_t changes_before = conn.TotalChanges();
    core::Status applied = batch[i]->Apply(conn);
    if (!applied.ok()) {
      if (!conn.InTransaction()) {
        // SQLite rolled the whole transaction back (disk full, I/O error).
        status =
            absl::UnavailableError("transaction rolled back: " + std::string(applied.message()));
        break;
      }
      isolate = conn.TotalChanges() != changes_before;
    }
    ++i;
    if (i == batch.size() && !isolate && batch.size() < max && Clock::now() < deadline) {
      // Writes arriving steadily: wait for more, batch_delay / 5 at a time
      // while more come, until the deadline in all. A commit costs about
      // three appends (WAL frames of the shared pages, locks): at 10,000
      // sends/s the writer committed batches of two or three and spent most
      // of its time committing. A lone write never waits.
      if (!TakeQueued(batch, max) && steady) {
        WaitQueued(batch, max, std::min(deadline, Clock::now() + options_.batch_delay / 5));
      }
    }
  }
  if (status.ok() && isolate) {
    if (hook_) hook_->Discard();
    status = conn.Exec("ROLLBACK");
    if (status.ok()) status = conn.Exec("BEGIN IMMEDIATE");
    if (status.ok()) status = ApplyIsolated(batch);
  }
  if (status.ok()) status = FlushBefore(nullptr);
  if (status.ok()) status = conn.Exec("COMMIT");
  if (!status.ok()) {
    if (conn.InTransaction()) (void)conn.Exec("ROLLBACK");
    if (hook_) hook_->Discard();
    if (!IsStorageFailure(status)) {
      status = absl::UnavailableError(std::string(status.message()));
    }
    FailAll(batch, status);
    return;
  }
  if (storage_failed_.exchange(false, std::memory_order_relaxed)) {
    Log().Info("writes succeed again");
  }
  if (hook_) hook_->Committed();
  Commits().commits.Inc();
  Commits().writes.Add(static_cast<double>(batch.size()));
  CommitInfo commit = ObserveCommit(Clock::now() - start, batch.size());
  CompleteLater(std::move(batch), core::Status(), commit);
  {
    std::lock_guard lock(write_mu_);
    queued_during_commit_ = !write_queue_.empty();
  }
  CatchUpCheckpoint();
}

}  // namespace mpim::store::sqlite
