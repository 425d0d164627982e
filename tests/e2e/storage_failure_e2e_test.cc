// End-to-end: the store's disk fails under a running server
// (docs/operations.md "Storage failures"). Sends are refused with
// `unavailable`, never answered `ok`; /readyz turns 503; reads go on; and
// once the disk is usable again the server recovers by itself, with no
// restart, or (a file system that stays read-only until it is repaired)
// after a restart, with every acknowledged message kept.
//
// The data dir is a file system of its own: a small tmpfs for a full disk,
// an ext4 image on a loop device for one that turns read-only. Mounting
// needs root (CI runs the suite as root); without it the tests skip.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mount.h>
#include <unistd.h>

#include <boost/json/serialize.hpp>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "support/api_client.h"
#include "support/group_helpers.h"
#include "support/server_process.h"
#include "support/ws_helpers.h"

namespace mpim {
namespace {

using testing::Account;
using testing::ApiClient;
using testing::Int;
using testing::IsErrorReply;
using testing::IsSendResult;
using testing::Ms;
using testing::MsgOf;
using testing::PrivateConvId;
using testing::ServerProcess;
using testing::Str;
using testing::TextSend;
using testing::UniqueName;
using testing::WaitForReadyz;
using testing::WsConn;

namespace json = boost::json;

// How long the server gets to notice a change of the disk.
constexpr Ms kNotice{10000};

// The data dir on a file system mounted for the test, and a server on it
// whose log goes next to the mount point (not onto the failing disk).
class StorageFailureE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = testing::FreshTempDir("mpim-storage-");
    mount_ = root_ / "data";
    std::filesystem::create_directories(mount_);
  }
  void TearDown() override {
    server_.reset();  // nothing may hold the mount open
    if (mounted_ && ::umount2(mount_.c_str(), 0) != 0) {
      ADD_FAILURE() << "umount " << mount_ << ": " << std::strerror(errno);
      ::umount2(mount_.c_str(), MNT_DETACH);
    }
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
  }

  ServerProcess* StartServer(std::vector<std::string> extra_args = {}) {
    server_ = std::make_unique<ServerProcess>(ServerProcess::Options{
        .extra_args = std::move(extra_args),
        .env = testing::WsEnv(
            {{"MPIM_LIMITS_SEND_PER_SEC", "100000"}, {"MPIM_LIMITS_SEND_BURST", "100000"}}),
        .data_dir = mount_,
        .log_file = root_ / ("server-" + std::to_string(++servers_started_) + ".log")});
    if (!server_->Start()) {
      ADD_FAILURE() << "server did not start: " << server_->error();
      return nullptr;
    }
    return server_.get();
  }

  struct Chat {
    Account a, b;
    std::string conv;
    std::unique_ptr<WsConn> wa, wb;
  };
  // Two accounts with a socket each (logging in writes, so this comes
  // before any fault).
  Chat OpenChat(uint16_t port) {
    ApiClient api(port);
    Chat c{api.NewAccount(UniqueName("disk_a")), api.NewAccount(UniqueName("disk_b")), "",
           std::make_unique<WsConn>(port), std::make_unique<WsConn>(port)};
    c.conv = PrivateConvId(c.a.id(), c.b.id());
    EXPECT_TRUE(c.wa->Open(c.a.token()));
    EXPECT_TRUE(c.wb->Open(c.b.token()));
    return c;
  }

  // Every message of the conversation: seqs 1..n without a gap, each
  // client_msg_id once; client_msg_id -> message.
  std::map<std::string, json::object> StoredMessages(uint16_t port, const Chat& c) {
    ApiClient api(port);
    auto history = testing::History(api, c.b.token(), c.conv);
    std::map<std::string, json::object> out;
    for (size_t i = 0; i < history.size(); ++i) {
      EXPECT_EQ(Int(history[i], "seq"), static_cast<int64_t>(i + 1)) << "a gap or reuse in seq";
      EXPECT_TRUE(out.emplace(Str(history[i], "client_msg_id"), history[i]).second)
          << Str(history[i], "client_msg_id") << " stored twice";
    }
    return out;
  }

  // While the disk fails: /readyz turns 503 and sends (five, client_msg_ids
  // <prefix>1..5) are refused as unavailable; their client_msg_ids.
  std::vector<std::string> ExpectRefused(ServerProcess& s, Chat& c, const std::string& prefix) {
    int last = 0;
    EXPECT_TRUE(WaitForReadyz(s.port(), 503, kNotice, &last)) << "/readyz answered " << last;
    std::vector<std::string> refused;
    for (int i = 1; i <= 5; ++i) {
      std::string cmid = prefix + std::to_string(i);
      auto r = c.wa->Request(TextSend(c.b.id(), cmid, cmid));
      EXPECT_TRUE(IsErrorReply(r, "unavailable")) << cmid << " " << c.wa->last_error();
      refused.push_back(cmid);
    }
    return refused;
  }

  std::filesystem::path root_, mount_;
  bool mounted_ = false;
  std::unique_ptr<ServerProcess> server_;
  int servers_started_ = 0;
};

class DiskFullE2eTest : public StorageFailureE2eTest {
 protected:
  void SetUp() override {
    StorageFailureE2eTest::SetUp();
    if (::mount("tmpfs", mount_.c_str(), "tmpfs", 0, "size=16m") != 0) {
      int err = errno;
      if (err == EPERM) {
        GTEST_SKIP() << "mounting a tmpfs needs root (CAP_SYS_ADMIN): " << std::strerror(err);
      }
      FAIL() << "mount -t tmpfs " << mount_ << ": " << std::strerror(err);
    }
    mounted_ = true;
  }

  // Writes a file until the tmpfs has no room left; its size.
  int64_t Fill() {
    int fd = ::open(filler().c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return -1;
    std::string chunk(64 * 1024, 'x');
    int64_t total = 0;
    for (size_t size : {chunk.size(), size_t{4096}, size_t{1}}) {
      for (;;) {
        ssize_t n = ::write(fd, chunk.data(), size);
        if (n <= 0) break;
        total += n;
      }
    }
    ::close(fd);
    return total;
  }
  std::filesystem::path filler() const { return mount_ / "filler"; }
};

TEST_F(DiskFullE2eTest, SendsAreUnavailableWhileFullAndTheServerRecoversByItself) {
  ServerProcess* s = StartServer();
  ASSERT_TRUE(s);
  Chat c = OpenChat(s->port());
  ASSERT_TRUE(c.wa && c.wb && !c.wa->closed() && !c.wb->closed());
  ASSERT_TRUE(IsSendResult(c.wa->Request(TextSend(c.b.id(), "before", "before"))));

  ASSERT_GT(Fill(), 0) << std::strerror(errno);
  std::vector<std::string> refused = ExpectRefused(*s, c, "full-");
  EXPECT_NE(s->Logs().find("writes failing"), std::string::npos) << s->Logs();
  // Reads go on.
  ApiClient api(s->port());
  auto page = api.Get("/conversations/" + c.conv + "/messages?after_seq=0", c.b.token());
  EXPECT_EQ(page.status, 200) << page.Describe();
  // The peer saw only the first message.
  auto m = c.wb->NextMsg(c.conv);
  ASSERT_TRUE(m) << c.wb->last_error();
  EXPECT_EQ(Str(MsgOf(*m), "client_msg_id"), "before");

  // Room again: no restart, the same sockets.
  std::filesystem::remove(filler());
  int last = 0;
  EXPECT_TRUE(WaitForReadyz(s->port(), 200, kNotice, &last)) << "/readyz answered " << last;
  for (size_t i = 0; i < refused.size(); ++i) {
    auto r = c.wa->Request(TextSend(c.b.id(), refused[i], refused[i]));
    ASSERT_TRUE(IsSendResult(r)) << refused[i] << " " << c.wa->last_error();
    EXPECT_EQ(Int(*r, "seq"), static_cast<int64_t>(i + 2)) << "a refused send used a seq";
    auto live = c.wb->NextMsg(c.conv);
    ASSERT_TRUE(live) << c.wb->last_error();
    EXPECT_EQ(Str(MsgOf(*live), "client_msg_id"), refused[i]);
  }
  auto stored = StoredMessages(s->port(), c);
  EXPECT_EQ(stored.size(), refused.size() + 1);
  EXPECT_NE(s->Logs().find("writes succeed again"), std::string::npos) << s->Logs();

  // And it all survives a restart.
  c.wa.reset();
  c.wb.reset();
  s->Signal(SIGTERM);
  ASSERT_EQ(s->Wait(Ms(15000)), 0) << s->Logs();
  s = StartServer();
  ASSERT_TRUE(s);
  EXPECT_EQ(StoredMessages(s->port(), c).size(), refused.size() + 1);
}

// A file system that turns read-only under the server, the way ext4 does
// on an error with errors=remount-ro. (`mount -o remount,ro` cannot do it:
// Linux refuses it with EBUSY while a file on the mount is open for
// writing, which the server's database always is.) Such a file system
// stays read-only until it is unmounted and checked, so the recovery here
// is a restart; tests/store/sqlite_fault_test.cc covers a store whose disk
// becomes writable again in place.
class ReadOnlyE2eTest : public StorageFailureE2eTest {
 protected:
  void SetUp() override {
    StorageFailureE2eTest::SetUp();
    if (::geteuid() != 0) GTEST_SKIP() << "mounting a loop device needs root";
    image_ = root_ / "ext4.img";
    int code = 0;
    std::string out = Run(
        "truncate -s 32M " + image_.string() + " && mkfs.ext4 -q -F " + image_.string() + " 2>&1",
        &code);
    if (code != 0) GTEST_SKIP() << "cannot make an ext4 image: " << out;
    if (!Mount()) GTEST_SKIP() << "cannot mount an ext4 image on a loop device: " << mount_error_;
    std::string device = Run("findmnt -n -o SOURCE --target " + mount_.string() + " 2>&1", &code);
    while (!device.empty() && std::isspace(static_cast<unsigned char>(device.back()))) {
      device.pop_back();
    }
    trigger_ =
        "/sys/fs/ext4/" + std::filesystem::path(device).filename().string() + "/trigger_fs_error";
    if (code != 0 || !std::filesystem::exists(trigger_)) {
      GTEST_SKIP() << "no " << trigger_ << " to turn the file system read-only";
    }
  }

  bool Mount() {
    int code = 0;
    mount_error_ =
        Run("mount -o loop,errors=remount-ro " + image_.string() + " " + mount_.string() + " 2>&1",
            &code);
    mounted_ = code == 0;
    return mounted_;
  }
  // Unmounts, checks and repairs the image, mounts it again.
  ::testing::AssertionResult Repair() {
    int code = 0;
    if (::umount2(mount_.c_str(), 0) != 0) {
      return ::testing::AssertionFailure() << "umount: " << std::strerror(errno);
    }
    mounted_ = false;
    std::string out = Run("e2fsck -f -y " + image_.string() + " 2>&1", &code);
    if (code > 1) return ::testing::AssertionFailure() << "e2fsck: " << code << " " << out;
    if (!Mount()) return ::testing::AssertionFailure() << "mount: " << mount_error_;
    return ::testing::AssertionSuccess();
  }
  static std::string Run(const std::string& cmd, int* code) {
    return testing::RunCommand(cmd, code);
  }

  std::filesystem::path image_, trigger_;
  std::string mount_error_;
};

TEST_F(ReadOnlyE2eTest, SendsAreUnavailableWhileReadOnlyAndAcknowledgedOnesSurviveTheRepair) {
  // `full`: an acknowledged write is on the disk, not only in the page
  // cache that a file system gone read-only never writes back.
  ServerProcess* s = StartServer({"--set", "store.sqlite_synchronous=full"});
  ASSERT_TRUE(s);
  Chat c = OpenChat(s->port());
  ASSERT_TRUE(c.wa && c.wb && !c.wa->closed() && !c.wb->closed());
  std::map<std::string, json::object> acked;
  for (int i = 1; i <= 20; ++i) {
    std::string cmid = "rw-" + std::to_string(i);
    auto r = c.wa->Request(TextSend(c.b.id(), cmid, cmid));
    ASSERT_TRUE(IsSendResult(r)) << cmid << " " << c.wa->last_error();
    acked[cmid] = *r;
  }

  { std::ofstream(trigger_) << "mpim storage_failure_e2e_test\n"; }
  std::vector<std::string> refused = ExpectRefused(*s, c, "ro-");
  // Still alive and reading.
  ApiClient api(s->port());
  EXPECT_EQ(api.Call("GET", "/healthz").status, 200);
  auto page = api.Get("/conversations/" + c.conv + "/messages?after_seq=0&limit=5", c.b.token());
  EXPECT_EQ(page.status, 200) << page.Describe();

  c.wa.reset();
  c.wb.reset();
  s->Signal(SIGTERM);
  ASSERT_EQ(s->Wait(Ms(15000)), 0) << s->Logs();
  server_.reset();
  ASSERT_TRUE(Repair());

  s = StartServer();
  ASSERT_TRUE(s);
  auto stored = StoredMessages(s->port(), c);
  for (const auto& [cmid, reply] : acked) {
    auto it = stored.find(cmid);
    ASSERT_NE(it, stored.end()) << "acknowledged " << cmid << " lost";
    EXPECT_EQ(Str(it->second, "msg_id"), Str(reply, "msg_id"));
  }
  EXPECT_EQ(stored.size(), acked.size());  // nothing refused was stored
  // The refused sends go through now.
  auto wa = std::make_unique<WsConn>(s->port());
  ASSERT_TRUE(wa->Open(c.a.token()));
  for (size_t i = 0; i < refused.size(); ++i) {
    auto r = wa->Request(TextSend(c.b.id(), refused[i], refused[i]));
    ASSERT_TRUE(IsSendResult(r)) << refused[i] << " " << wa->last_error();
    EXPECT_EQ(Int(*r, "seq"), static_cast<int64_t>(acked.size() + i + 1));
  }
}

}  // namespace
}  // namespace mpim
