// Child processes for the commands that run other programs (`mpim cluster
// up` runs redis-server, mariadbd, etcd and its nodes): spawn with a clean
// signal mask in a process group of its own, output to a file, signal, and
// reap with a deadline.
//
// Threads: any thread may spawn; a child spawned from the main thread can be
// tied to this process's life (`die_with_parent`: the kernel's parent-death
// signal follows the thread that forked, not the process).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace mpim::core {

struct SpawnOptions {
  std::vector<std::string> argv;  // argv[0] looked up on PATH unless it holds a '/'
  // stdout and stderr appended here; empty: /dev/null. stdin is /dev/null.
  std::string output;
  std::string error_output;  // stderr appended here instead, when not empty
  std::vector<std::pair<std::string, std::string>> env;  // added to this process's environment
  bool own_process_group = true;  // a terminal's Ctrl-C reaches only us, not the child
  bool die_with_parent = true;    // SIGKILL when the spawning thread's process dies
};

// Starts the child; its pid. Fails when fork fails or argv[0] cannot be
// executed (the child's exec error travels back through a pipe).
absl::StatusOr<pid_t> Spawn(const SpawnOptions& options);

// Reaps child `pid` once it exits: its exit code, or -signal if a signal
// killed it; nullopt if it has not exited within `deadline` (0: just look).
std::optional<int> WaitForExit(pid_t pid, std::chrono::milliseconds deadline);

// SIGTERM, then SIGKILL if it has not exited within `grace`; its exit as
// WaitForExit says it (nullopt only if even SIGKILL did not reap it in 10 s).
std::optional<int> Terminate(pid_t pid, std::chrono::milliseconds grace);

// Whether process `pid` exists (a zombie not yet reaped counts).
bool ProcessAlive(pid_t pid);

// The absolute path of `name` on PATH (or `name` itself when it holds a
// '/' and is executable); empty when there is none.
std::string FindOnPath(const std::string& name);

// "exited with code N" / "killed by SIGKILL" for WaitForExit's result.
std::string DescribeExit(int code);

}  // namespace mpim::core
