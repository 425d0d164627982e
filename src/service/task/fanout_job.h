// The "fanout" job (see service/fanout.h): delivers one message, or its
// recall, to every member of a large group, a page of groups.fanout_batch
// members at a time, to their live connections only. Re-running it (after a
// crash) delivers again; sessions drop seqs they have already passed on, and
// clients dedup by (conv_id, seq).
#pragma once

#include "service/deliverer.h"
#include "service/task/task_worker.h"
#include "store/store.h"

namespace mpim::service {

TaskWorker::Handler FanoutJobHandler(store::Store& store, Deliverer& deliverer, int64_t batch);

}  // namespace mpim::service
