// The "fanout" job (see service/fanout.h): delivers one message, or its
// recall, to every member of a large group, a page of groups.fanout_batch
// members at a time, to their live connections only. The jobs of one lease
// batch that carry messages of the same group go out together: one pass
// over the members, and each session takes all of them at once (several
// frames per socket write when the worker is behind). Re-running it (after a
// crash) delivers again; sessions drop seqs they have already passed on, and
// clients dedup by (conv_id, seq). With a push planner, each page's members
// without a live session get their push jobs queued before the job is done
// (push/push_planner.h).
#pragma once

#include "service/deliverer.h"
#include "service/push/push_planner.h"
#include "service/task/task_worker.h"
#include "store/store.h"

namespace mpim::service {

TaskWorker::Handler FanoutJobHandler(store::Store& store, Deliverer& deliverer, int64_t batch,
                                     push::PushPlanner* planner = nullptr);

}  // namespace mpim::service
