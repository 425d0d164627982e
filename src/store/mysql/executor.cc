#include "store/mysql/executor.h"

#include <pthread.h>

#include <algorithm>
#include <string>

#include "core/logging.h"
#include "core/metrics.h"

namespace mpim::store::mysql {
namespace {

core::Status ClosedError() { return absl::UnavailableError("store closed"); }

const core::Logger& Log() {
  static const core::Logger log("store");
  return log;
}

struct CommitMetrics {
  core::Counter& commits;
  core::Counter& writes;
  core::Counter& retries;
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
          .Counter("mpim_store_batch_retries_total",
                   "Write batches run again after a lock deadlock, a lock wait timeout or a "
                   "connection that died while idle.")
          .With({})};
  return m;
}

void NameThread(const std::string& name) {
  pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
}

}  // namespace

core::StatusOr<Connection*> ConnectionSlot::Get() {
  if (conn_ && !conn_->broken()) return conn_.get();
  conn_.reset();
  const auto now = std::chrono::steady_clock::now();
  if (now < next_attempt_) return absl::UnavailableError("database unreachable (retrying)");
  auto opened = Connection::Open(options_);
  if (!opened.ok()) {
    backoff_ =
        std::clamp(backoff_ * 2, std::chrono::milliseconds(100), std::chrono::milliseconds(2000));
    next_attempt_ = now + backoff_;
    return opened.status();
  }
  backoff_ = std::chrono::milliseconds(0);
  conn_ = std::move(*opened);
  return conn_.get();
}

core::StatusOr<std::unique_ptr<Executor>> Executor::Start(const MysqlOptions& options) {
  if (options.batch_max < 1) return absl::InvalidArgumentError("batch_max must be >= 1");
  if (options.pool_size < 1) return absl::InvalidArgumentError("pool_size must be >= 1");
  std::unique_ptr<Executor> exec(new Executor(options));
  // The writer's connection now, so that a wrong URL fails start-up.
  MPIM_RETURN_IF_ERROR(exec->writer_slot_.Get().status());
  exec->writer_thread_ = std::thread([e = exec.get()] {
    NameThread("store-writer");
    e->WriterLoop();
  });
  exec->completion_thread_ = std::thread([e = exec.get()] {
    NameThread("store-done");
    e->CompletionLoop();
  });
  for (int i = 0; i < options.pool_size; ++i) {
    exec->reader_threads_.emplace_back([e = exec.get(), i] {
      NameThread("store-read-" + std::to_string(i));
      e->ReaderLoop();
    });
  }
  return exec;
}

Executor::Executor(const MysqlOptions& options)
    : options_(options),
      now_(options.now ? options.now : NowMsFn(SystemNowMs)),
      writer_slot_(options_) {}

Executor::~Executor() { Close(); }

void Executor::Close() {
  std::lock_guard close_lock(close_mu_);
  {
    std::lock_guard lock(write_mu_);
    closing_ = true;
  }
  write_cv_.notify_all();
  if (writer_thread_.joinable()) writer_thread_.join();
  {
    std::lock_guard lock(read_mu_);
    read_closing_ = true;
  }
  read_cv_.notify_all();
  for (auto& t : reader_threads_) {
    if (t.joinable()) t.join();
  }
  reader_threads_.clear();
  {
    std::lock_guard lock(done_mu_);
    done_closing_ = true;
  }
  done_cv_.notify_all();
  if (completion_thread_.joinable()) completion_thread_.join();
  writer_slot_.Reset();
}

void Executor::Enqueue(std::unique_ptr<WriteOp> op) {
  {
    std::lock_guard lock(write_mu_);
    if (!closing_) {
      write_queue_.push_back(std::move(op));
      write_cv_.notify_one();
      return;
    }
  }
  op->Complete(ClosedError());
}

void Executor::EnqueueRead(ReadTask task) {
  {
    std::lock_guard lock(read_mu_);
    if (!read_closing_) {
      read_queue_.push_back(std::move(task));
      read_cv_.notify_one();
      return;
    }
  }
  task(nullptr);  // closed: the task answers kUnavailable
}

void Executor::ReaderLoop() {
  ConnectionSlot slot(options_);
  for (;;) {
    ReadTask task;
    {
      std::unique_lock lock(read_mu_);
      read_cv_.wait(lock, [&] { return read_closing_ || !read_queue_.empty(); });
      if (read_queue_.empty()) return;
      task = std::move(read_queue_.front());
      read_queue_.pop_front();
    }
    task(&slot);
  }
}

void Executor::WriterLoop() {
  const size_t max = static_cast<size_t>(options_.batch_max);
  for (;;) {
    Batch batch;
    {
      std::unique_lock lock(write_mu_);
      write_cv_.wait(lock, [&] { return closing_ || !write_queue_.empty(); });
      if (write_queue_.empty()) return;
      while (!write_queue_.empty() && batch.size() < max) {
        batch.push_back(std::move(write_queue_.front()));
        write_queue_.pop_front();
      }
    }
    RunBatch(std::move(batch));
  }
}

core::Status Executor::FlushBefore(Connection& conn, const WriteOp* op) {
  if (hook_ == nullptr || (op != nullptr && op->defers())) return core::Status();
  return hook_->Flush(conn);
}

core::Status Executor::TryBatch(Connection& conn, Batch& batch, bool isolated, bool* commit_sent) {
  // A deferred write that fails (a duplicate key another node just wrote)
  // fails the attempt: the batch runs again isolated, each write alone.
  auto flush = [&](const WriteOp* op) -> core::Status {
    core::Status st = FlushBefore(conn, op);
    if (st.ok() || isolated || conn.broken() || conn.must_retry()) return st;
    return absl::FailedPreconditionError("isolate");
  };
  if (hook_ != nullptr) {
    std::vector<const std::any*> tags;
    for (auto& op : batch) {
      if (op->defers()) tags.push_back(op->tag());
    }
    if (!tags.empty()) MPIM_RETURN_IF_ERROR(hook_->Begin(conn, tags, isolated));
  }
  for (auto& op : batch) {
    MPIM_RETURN_IF_ERROR(flush(op.get()));
    if (isolated) MPIM_RETURN_IF_ERROR(conn.ExecText("SAVEPOINT item"));
    const int64_t before = conn.TotalChanges();
    core::Status st = op->Apply(conn);
    if (st.ok()) continue;
    if (conn.broken() || conn.must_retry()) return st;
    if (isolated) {
      MPIM_RETURN_IF_ERROR(conn.ExecText("ROLLBACK TO SAVEPOINT item"));
    } else if (conn.TotalChanges() != before) {
      // It changed rows before failing: start over with savepoints.
      return absl::FailedPreconditionError("isolate");
    }
  }
  MPIM_RETURN_IF_ERROR(flush(nullptr));
  *commit_sent = true;
  return conn.Commit();
}

void Executor::RunBatch(Batch batch) {
  bool isolated = false;
  core::Status status;
  const auto batch_started = std::chrono::steady_clock::now();
  for (int attempt = 1;; ++attempt) {
    auto conn = writer_slot_.Get();
    if (!conn.ok()) {
      status = conn.status();
      break;
    }
    Connection& c = **conn;
    bool commit_sent = false;
    const auto started = std::chrono::steady_clock::now();
    status = TryBatch(c, batch, isolated, &commit_sent);
    if (status.ok()) break;
    const bool broken = c.broken();
    const bool retry = c.must_retry();
    if (!broken) (void)c.Rollback();
    if (hook_) hook_->Discard();
    if (status.code() == absl::StatusCode::kFailedPrecondition && !isolated) {
      isolated = true;
      continue;
    }
    // A connection lost before the commit was sent committed nothing: the
    // batch may run again on a new one, once, if it failed at once (a
    // connection that died while idle), not after waiting out a timeout (a
    // server that stopped answering would make it wait twice).
    const bool stale = broken && !commit_sent && attempt == 1 &&
                       std::chrono::steady_clock::now() - started <
                           std::chrono::milliseconds(options_.timeout_ms / 2);
    if (attempt < kMaxAttempts && (retry || stale)) {
      Commits().retries.Inc();
      if (broken) writer_slot_.Reset();
      if (retry) std::this_thread::sleep_for(std::chrono::milliseconds(2 * attempt));
      continue;
    }
    if (broken) writer_slot_.Reset();
    break;
  }
  if (!status.ok()) {
    if (!writes_failing_) {
      writes_failing_ = true;
      Log().Warn("writes failing", {{"error", std::string(status.message())}});
    }
    CompleteLater(std::move(batch), absl::UnavailableError(std::string(status.message())));
    return;
  }
  if (writes_failing_) {
    writes_failing_ = false;
    Log().Info("writes succeed again");
  }
  if (hook_) hook_->Committed();
  Commits().commits.Inc();
  Commits().writes.Add(static_cast<double>(batch.size()));
  CommitInfo commit = ObserveCommit(std::chrono::steady_clock::now() - batch_started, batch.size());
  CompleteLater(std::move(batch), core::Status(), commit);
}

void Executor::CompleteLater(Batch batch, core::Status status, CommitInfo commit) {
  {
    std::lock_guard lock(done_mu_);
    done_queue_.push_back(Finished{std::move(batch), std::move(status), commit});
  }
  done_cv_.notify_one();
}

void Executor::CompletionLoop() {
  for (;;) {
    Finished f;
    {
      std::unique_lock lock(done_mu_);
      done_cv_.wait(lock, [&] { return done_closing_ || !done_queue_.empty(); });
      if (done_queue_.empty()) return;
      f = std::move(done_queue_.front());
      done_queue_.pop_front();
    }
    CommitScope scope(f.commit);
    for (auto& op : f.ops) op->Complete(f.status);
  }
}

}  // namespace mpim::store::mysql
