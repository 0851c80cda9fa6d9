#include <catch2/catch.hpp>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include <zlib.h>

#include "pipekit/io/crc32c.hpp"
#include "pipekit/broker/disk_queue.hpp"

namespace fs = std::filesystem;
using pipekit::broker::disk_position;
using pipekit::broker::disk_queue;
using pipekit::broker::disk_queue_options;
using pipekit::broker::disk_recovery;
using pipekit::broker::disk_status;

namespace {

struct temp_dir {
  fs::path path;
  temp_dir() {
    char name[] = "/tmp/pipekit-dq-XXXXXX";
    REQUIRE(::mkdtemp(name) != nullptr);
    path = name;
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

std::unique_ptr<disk_queue> open_queue(const fs::path& dir, disk_queue_options o = {}, disk_recovery* r = nullptr) {
  std::unique_ptr<disk_queue> q;
  disk_status st = disk_queue::open(dir, "t", o, q, r);
  INFO(st.error);
  REQUIRE(st.ok());
  return q;
}

std::string record(int i) { return fmt::format("message {:05} {}", i, std::string(static_cast<std::size_t>(i % 37), 'x')); }

void put_all(disk_queue& q, int from, int to) {
  for (int i = from; i < to; ++i) {
    std::string r = record(i);
    REQUIRE(q.put(r).ok());
  }
  disk_status st = q.flush();
  INFO(st.error);
  REQUIRE(st.ok());
}

std::vector<std::string> read_all(disk_queue& q) {
  std::vector<std::string> out;
  std::string r;
  disk_status st;
  while (q.read(r, st)) out.push_back(r);
  INFO(st.error);
  REQUIRE(st.ok());
  return out;
}

std::vector<std::string> expected(int from, int to) {
  std::vector<std::string> v;
  for (int i = from; i < to; ++i) v.push_back(record(i));
  return v;
}

std::vector<fs::path> files(const fs::path& dir, std::string_view contains) {
  std::vector<fs::path> v;
  for (auto& e : fs::directory_iterator(dir))
    if (e.path().filename().string().find(contains) != std::string::npos) v.push_back(e.path());
  std::sort(v.begin(), v.end());
  return v;
}

}  // namespace

TEST_CASE("disk queue: records come back in order across segments and a clean reopen", "[nsq]") {
  temp_dir d;
  disk_queue_options o;
  o.max_bytes_per_file = 1000;  // ~25 records per segment
  {
    auto q = open_queue(d.path, o);
    put_all(*q, 0, 300);
    CHECK(q->depth() == 300);
    CHECK(files(d.path, ".dat").size() > 10);
    std::string r;
    disk_status st;
    for (int i = 0; i < 100; ++i) {
      REQUIRE(q->read(r, st));
      CHECK(r == record(i));
    }
    CHECK(q->depth() == 200);
    REQUIRE(q->close().ok());
  }
  disk_recovery rec;
  auto q = open_queue(d.path, o, &rec);
  CHECK(rec.records == 200);
  CHECK(rec.set_aside.empty());
  CHECK(read_all(*q) == expected(100, 300));
  CHECK(q->depth() == 0);
  // Consumed segments are gone; at most the last (write) segment remains.
  CHECK(files(d.path, ".dat").size() == 1);
  put_all(*q, 300, 310);
  CHECK(read_all(*q) == expected(300, 310));
}

TEST_CASE("disk queue: a record never spans segments; an oversized record is refused", "[nsq]") {
  temp_dir d;
  disk_queue_options o;
  o.max_bytes_per_file = 64;
  o.max_record_size = 100;
  auto q = open_queue(d.path, o);
  std::string big(90, 'b');
  REQUIRE(q->put(big).ok());   // bigger than a segment: gets one of its own
  REQUIRE(q->put(std::string(10, 's')).ok());
  CHECK_FALSE(q->put(std::string(101, 'x')).ok());
  REQUIRE(q->flush().ok());
  CHECK(files(d.path, ".dat").size() == 2);
  std::string r;
  disk_status st;
  REQUIRE(q->read(r, st));
  CHECK(r == big);
  REQUIRE(q->read(r, st));
  CHECK(r == std::string(10, 's'));
  CHECK_FALSE(q->read(r, st));
}

TEST_CASE("disk queue: after kill -9, every flushed record comes back, consumed ones do not", "[nsq]") {
  temp_dir d;
  disk_queue_options o;
  o.max_bytes_per_file = 4096;
  o.sync_every = 1000000;  // no sync at all: only what reached the kernel
  pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    std::unique_ptr<disk_queue> q;
    if (!disk_queue::open(d.path, "t", o, q).ok()) ::_exit(1);
    for (int i = 0; i < 500; ++i) (void)q->put(record(i));
    if (!q->flush().ok()) ::_exit(2);
    std::string r;
    disk_status st;
    for (int i = 0; i < 50; ++i) (void)q->read(r, st);
    if (!q->sync().ok()) ::_exit(3);  // persists the consumed position: 50
    for (int i = 0; i < 10; ++i) (void)q->read(r, st);  // read but not synced: delivered again
    for (int i = 500; i < 600; ++i) (void)q->put(record(i));
    if (!q->flush().ok()) ::_exit(4);
    ::kill(::getpid(), SIGKILL);
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  REQUIRE(WIFSIGNALED(status));
  disk_recovery rec;
  auto q = open_queue(d.path, o, &rec);
  CHECK(rec.records == 550);
  CHECK(rec.set_aside.empty());
  CHECK(read_all(*q) == expected(50, 600));
}

TEST_CASE("disk queue: a torn tail is set aside, the records before it are kept", "[nsq]") {
  temp_dir d;
  disk_queue_options o;
  {
    auto q = open_queue(d.path, o);
    put_all(*q, 0, 20);
    REQUIRE(q->close().ok());
  }
  auto segs = files(d.path, ".dat");
  REQUIRE(segs.size() == 1);
  auto good_size = fs::file_size(segs[0]);
  {
    // Half a record: a header announcing 50 bytes, then 7 of them.
    std::ofstream f(segs[0], std::ios::binary | std::ios::app);
    const char torn[] = {50, 0, 0, 0, 1, 2, 3, 4, 'p', 'a', 'r', 't', 'i', 'a', 'l'};
    f.write(torn, sizeof torn);
  }
  disk_recovery rec;
  auto q = open_queue(d.path, o, &rec);
  CHECK(rec.records == 20);
  CHECK(rec.set_aside_bytes == 15);
  REQUIRE(rec.set_aside.size() == 1);
  CHECK(fs::file_size(rec.set_aside[0]) == 15);
  REQUIRE(rec.warnings.size() == 1);
  CHECK_THAT(rec.warnings[0], Catch::Contains("torn record") && Catch::Contains(segs[0].string()));
  CHECK(fs::file_size(segs[0]) == good_size);
  // Appends go on after the cut, not after the garbage.
  put_all(*q, 20, 25);
  CHECK(read_all(*q) == expected(0, 25));
}

TEST_CASE("disk queue: a failed write (file size limit) fails the whole flush and the queue goes on", "[nsq]") {
  temp_dir d;
  disk_queue_options o;
  o.max_bytes_per_file = 1 << 20;
  auto q = open_queue(d.path, o);
  put_all(*q, 0, 10);
  auto seg = files(d.path, ".dat").at(0);
  auto size_before = fs::file_size(seg);

  // A real kernel refusal: RLIMIT_FSIZE makes write(2) fail with EFBIG, as a full disk fails with ENOSPC.
  struct rlimit old {};
  REQUIRE(::getrlimit(RLIMIT_FSIZE, &old) == 0);
  auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  struct rlimit small = old;
  small.rlim_cur = size_before + 300;
  REQUIRE(::setrlimit(RLIMIT_FSIZE, &small) == 0);
  for (int i = 10; i < 100; ++i) REQUIRE(q->put(record(i)).ok());
  disk_status st = q->flush();
  REQUIRE(::setrlimit(RLIMIT_FSIZE, &old) == 0);
  std::signal(SIGXFSZ, old_handler);

  CHECK_FALSE(st.ok());
  CHECK_THAT(st.error, Catch::Contains(seg.string()));
  CHECK(q->depth() == 10);
  CHECK(q->pending() == 0);
  CHECK(fs::file_size(seg) == size_before);  // cut back: no partial record left behind
  put_all(*q, 100, 105);
  auto want = expected(0, 10);
  auto more = expected(100, 105);
  want.insert(want.end(), more.begin(), more.end());
  CHECK(read_all(*q) == want);
}

TEST_CASE("disk queue: with manual commit a crash delivers again what was read but not committed", "[nsq]") {
  temp_dir d;
  disk_queue_options o;
  o.max_bytes_per_file = 500;
  disk_position committed;
  {
    auto q = open_queue(d.path, o);
    q->manual_commit(true);
    put_all(*q, 0, 60);
    std::string r;
    disk_status st;
    for (int i = 0; i < 30; ++i) {
      REQUIRE(q->read(r, st));
      if (i == 19) committed = q->read_position();  // records 0..19 finished
    }
    q->commit(committed);
    REQUIRE(q->sync().ok());
    // Records 20..29 were read but are still in flight when the process dies.
  }
  auto q = open_queue(d.path, o);
  CHECK(read_all(*q) == expected(20, 60));
}

TEST_CASE("disk queue: empty drops everything; a damaged metadata file keeps every record", "[nsq]") {
  temp_dir d;
  {
    auto q = open_queue(d.path);
    put_all(*q, 0, 10);
    REQUIRE(q->empty().ok());
    CHECK(q->depth() == 0);
    std::string r;
    disk_status st;
    CHECK_FALSE(q->read(r, st));
    put_all(*q, 10, 15);
    REQUIRE(q->close().ok());
  }
  {
    std::ofstream f(d.path / "t.diskqueue.meta", std::ios::trunc);
    f << "garbage\n";
  }
  disk_recovery rec;
  auto q = open_queue(d.path, {}, &rec);
  REQUIRE(rec.warnings.size() == 1);
  CHECK_THAT(rec.warnings[0], Catch::Contains("the metadata is not used"));
  CHECK(read_all(*q) == expected(10, 15));
}

namespace {

std::string le32(std::uint32_t v) {
  std::string b(4, '\0');
  for (int i = 0; i < 4; ++i) b[static_cast<std::size_t>(i)] = static_cast<char>((v >> (8 * i)) & 0xff);
  return b;
}
std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}
// A version 1 segment, as queues were written before CRC-32C: zlib's CRC-32 of (length, payload).
void write_v1_segment(const fs::path& dir, int from, int to) {
  std::ofstream out(dir / "t.diskqueue.000000.dat", std::ios::binary);
  for (int i = from; i < to; ++i) {
    std::string r = record(i), len = le32(static_cast<std::uint32_t>(r.size()));
    uLong crc = ::crc32(0L, reinterpret_cast<const Bytef*>(len.data()), 4);
    crc = ::crc32(crc, reinterpret_cast<const Bytef*>(r.data()), static_cast<uInt>(r.size()));
    out << len << le32(static_cast<std::uint32_t>(crc)) << r;
  }
}

}  // namespace

TEST_CASE("disk queue: version 2 checksums with CRC-32C; a version 1 queue stays readable and stays v1", "[nsq]") {
  SECTION("a new queue is version 2: CRC-32C of the length bytes and the payload") {
    temp_dir d;
    auto q = open_queue(d.path);
    put_all(*q, 0, 1);
    REQUIRE(q->sync().ok());
    std::string seg = read_file(d.path / "t.diskqueue.000000.dat"), r = record(0);
    REQUIRE(seg.size() == 8 + r.size());
    CHECK(seg.substr(0, 4) == le32(static_cast<std::uint32_t>(r.size())));
    CHECK(seg.substr(4, 4) == le32(pipekit::io::crc32c(r, pipekit::io::crc32c(seg.substr(0, 4)))));
    q->close();
    CHECK(read_file(d.path / "t.diskqueue.meta").rfind("pipekit-disk-queue 2\n", 0) == 0);
  }
  SECTION("version 1 with its metadata, or without (found from the first record)") {
    const bool with_meta = GENERATE(true, false);
    INFO("with metadata: " << with_meta);
    temp_dir d;
    write_v1_segment(d.path, 0, 50);
    if (with_meta) std::ofstream(d.path / "t.diskqueue.meta") << "pipekit-disk-queue 1\n0 0\n";
    disk_recovery rec;
    auto q = open_queue(d.path, {}, &rec);
    CHECK(rec.records == 50);
    CHECK(rec.set_aside.empty());
    put_all(*q, 50, 80);  // appended in the queue's own version
    q->close();
    CHECK(read_file(d.path / "t.diskqueue.meta").rfind("pipekit-disk-queue 1\n", 0) == 0);
    disk_recovery again;
    q = open_queue(d.path, {}, &again);
    CHECK(again.set_aside.empty());
    CHECK(read_all(*q) == expected(0, 80));
  }
}

TEST_CASE("disk queue: metadata that does not fit the data is not used; every record is delivered", "[nsq]") {
  // Each of these over a channel's .meta used to delete the segment or skip its records in silence.
  const std::string bad = GENERATE(as<std::string>{}, "-1 0", "7 0", "1 0", "0 -5", "0 999999999", "0 5", "0 +8",
                                   "0x1 0", "0 0 0", "0", "0 0junk", "0 0\n0 0", "0 18446744073709551616", " 0 0", "",
                                   "0 0\r");
  INFO("position line: " << bad);
  temp_dir d;
  {
    auto q = open_queue(d.path);
    put_all(*q, 0, 10000);
    REQUIRE(q->close().ok());
  }
  std::ofstream(d.path / "t.diskqueue.meta", std::ios::trunc) << "pipekit-disk-queue 2\n" << bad << "\n";
  disk_recovery rec;
  auto q = open_queue(d.path, {}, &rec);
  REQUIRE(rec.warnings.size() == 1);
  CHECK_THAT(rec.warnings[0], Catch::Contains("t.diskqueue.meta") && Catch::Contains("delivered again"));
  CHECK(rec.set_aside.empty());
  CHECK(rec.records == 10000);
  CHECK(read_all(*q) == expected(0, 10000));
  // The position is written anew at the next sync, so the next start has no complaint.
  REQUIRE(q->close().ok());
  disk_recovery again;
  q = open_queue(d.path, {}, &again);
  CHECK(again.warnings.empty());
  CHECK(q->depth() == 0);
}

TEST_CASE("disk queue: a damaged metadata file over several segments keeps every segment", "[nsq]") {
  const std::string meta = GENERATE(as<std::string>{}, "pipekit-disk-queue 2\n2 0\n", "pipekit-disk-queue 2\n99 0\n",
                                    "pipekit-disk-queue 2\n18446744073709551615 0\n", "pipekit-disk-queue 9\n0 0\n",
                                    "pipekit-disk-queue 2\n0 0\n1 0\n");
  INFO("metadata: " << meta);
  temp_dir d;
  disk_queue_options o;
  o.max_bytes_per_file = 4096;
  {
    auto q = open_queue(d.path, o);
    put_all(*q, 0, 1000);
    REQUIRE(q->close().ok());
  }
  const auto segments = files(d.path, ".dat");
  REQUIRE(segments.size() > 5);
  std::ofstream(d.path / "t.diskqueue.meta", std::ios::trunc) << meta;
  disk_recovery rec;
  auto q = open_queue(d.path, o, &rec);
  REQUIRE(rec.warnings.size() == 1);
  CHECK_THAT(rec.warnings[0], Catch::Contains("delivered again"));
  CHECK(files(d.path, ".dat") == segments);
  CHECK(read_all(*q) == expected(0, 1000));
}

TEST_CASE("disk queue: a consumed position on a record boundary is used, also before a damaged record", "[nsq]") {
  temp_dir d;
  disk_position at_500;
  {
    auto q = open_queue(d.path);
    put_all(*q, 0, 1000);
    std::string r;
    disk_status st;
    for (int i = 0; i < 500; ++i) REQUIRE(q->read(r, st));
    at_500 = q->read_position();
    REQUIRE(q->close().ok());
  }
  std::ofstream(d.path / "t.diskqueue.meta", std::ios::trunc)
      << "pipekit-disk-queue 2\n" << at_500.segment << ' ' << at_500.offset << "\n";
  SECTION("an intact record there") {
    disk_recovery rec;
    auto q = open_queue(d.path, {}, &rec);
    CHECK(rec.warnings.empty());
    CHECK(read_all(*q) == expected(500, 1000));
  }
  SECTION("a damaged record there: the position is still right, the damage is reported as such") {
    {
      std::fstream f(d.path / "t.diskqueue.000000.dat", std::ios::binary | std::ios::in | std::ios::out);
      f.seekp(static_cast<std::streamoff>(at_500.offset + 10));
      f.put('#');
    }
    disk_recovery rec;
    auto q = open_queue(d.path, {}, &rec);
    REQUIRE_FALSE(rec.warnings.empty());
    CHECK_THAT(rec.warnings[0], Catch::Contains("checksum mismatch"));
    CHECK_THAT(rec.warnings[0], !Catch::Contains("metadata"));
  }
}

TEST_CASE("disk queue: a damaged record is set aside; the records after it in its segment are kept", "[nsq]") {
  temp_dir d;
  disk_queue_options o;
  o.max_bytes_per_file = 1 << 20;
  {
    auto q = open_queue(d.path, o);
    put_all(*q, 0, 2000);
    REQUIRE(q->close().ok());
  }
  auto segs = files(d.path, ".dat");
  REQUIRE(segs.size() == 1);
  std::string bytes = read_file(segs[0]);
  std::vector<std::size_t> starts;  // where each record starts
  for (std::size_t off = 0; off < bytes.size(); off += 8 + static_cast<unsigned char>(bytes[off])) starts.push_back(off);
  REQUIRE(starts.size() == 2000);
  const auto at = [&](int i) { return starts[static_cast<std::size_t>(i)]; };

  std::vector<std::string> want;  // what must come back
  std::string why, records;       // the log line says why and how many records
  std::size_t damaged_bytes = 0;
  SECTION("a payload byte flipped: exactly that record") {
    bytes[at(1000) + 8 + 3] ^= 0x20;
    damaged_bytes = at(1001) - at(1000);
    why = "checksum mismatch at byte " + std::to_string(at(1000));
    records = "(1 record)";
    want = expected(0, 1000);
    for (auto& r : expected(1001, 2000)) want.push_back(r);
  }
  SECTION("a length field damaged: found again by the next whole record") {
    bytes[at(1000) + 2] = '\x7f';  // a length over the limit
    damaged_bytes = at(1001) - at(1000);
    why = "record length";
    records = "(at least 1 record)";
    want = expected(0, 1000);
    for (auto& r : expected(1001, 2000)) want.push_back(r);
  }
  SECTION("4 KiB zeroed from the middle of record 1000 (a lost block): the records in it") {
    std::fill(bytes.begin() + static_cast<std::ptrdiff_t>(at(1000) + 5), bytes.begin() + static_cast<std::ptrdiff_t>(at(1000) + 4101), '\0');
    int first_after = 1001;
    while (at(first_after) < at(1000) + 4101) ++first_after;
    damaged_bytes = at(first_after) - at(1000);
    why = "at byte " + std::to_string(at(1000));
    records = "(at least 1 record)";
    want = expected(0, 1000);
    for (auto& r : expected(first_after, 2000)) want.push_back(r);
  }
  {
    std::ofstream f(segs[0], std::ios::binary | std::ios::trunc);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  disk_recovery rec;
  auto q = open_queue(d.path, o, &rec);
  REQUIRE(rec.warnings.size() == 1);
  INFO(rec.warnings[0]);
  CHECK_THAT(rec.warnings[0], Catch::Contains(why) && Catch::Contains(records) &&
                                  Catch::Contains(fmt::format("{} bytes", damaged_bytes)) &&
                                  Catch::Contains("the records after it, from byte"));
  CHECK(rec.set_aside_bytes == damaged_bytes);
  CHECK(rec.set_aside_records == 1);
  REQUIRE(rec.set_aside.size() == 1);
  CHECK(read_file(rec.set_aside[0]) == bytes.substr(at(1000), damaged_bytes));
  CHECK(rec.records == want.size());
  CHECK(read_all(*q) == want);
  q->close();
  // The segment was rewritten without the damage: a second start finds nothing wrong.
  disk_recovery again;
  q = open_queue(d.path, o, &again);
  CHECK(again.warnings.empty());
  CHECK(files(d.path, ".tmp").empty());
}

TEST_CASE("disk queue: garbage between records, and damage in several segments, each set aside alone", "[nsq]") {
  temp_dir d;
  disk_queue_options o;
  o.max_bytes_per_file = 1000;
  {
    auto q = open_queue(d.path, o);
    put_all(*q, 0, 100);
    REQUIRE(q->close().ok());
  }
  auto segs = files(d.path, ".dat");
  REQUIRE(segs.size() >= 3);
  // Segment 0: 300 bytes of noise after its first record; segment 1: its first record's checksum.
  std::string s0 = read_file(segs[0]), s1 = read_file(segs[1]);
  const std::size_t first = 8 + static_cast<unsigned char>(s0[0]);
  int in_first = 0;  // records of segment 0
  for (std::size_t off = 0; off < s0.size(); off += 8 + static_cast<unsigned char>(s0[off])) ++in_first;
  std::string noise;
  std::uint32_t x = 12345;
  for (int i = 0; i < 300; ++i) noise.push_back(static_cast<char>((x = x * 1103515245 + 12345) >> 16));
  s0.insert(first, noise);
  s1[5] ^= 1;
  std::ofstream(segs[0], std::ios::binary | std::ios::trunc) << s0;
  std::ofstream(segs[1], std::ios::binary | std::ios::trunc) << s1;
  disk_recovery rec;
  auto q = open_queue(d.path, o, &rec);
  REQUIRE(rec.warnings.size() == 2);
  CHECK_THAT(rec.warnings[0], Catch::Contains("300 bytes (at least 1 record)"));
  CHECK_THAT(rec.warnings[1], Catch::Contains("checksum mismatch at byte 0") && Catch::Contains("(1 record)"));
  CHECK(rec.set_aside_records == 2);
  // Lost: only the first record of segment 1 (the noise held none).
  auto want = expected(0, 100);
  want.erase(want.begin() + in_first);
  CHECK(read_all(*q) == want);
}

TEST_CASE("disk queue: a record damaged while the queue is open is skipped alone, the rest read on", "[nsq]") {
  temp_dir d;
  disk_queue_options o;
  o.max_bytes_per_file = 4 << 20;
  auto q = open_queue(d.path, o);
  put_all(*q, 0, 20000);  // ~800 KB: more than the reader buffers at once
  std::string r;
  disk_status st;
  for (int i = 0; i < 10; ++i) REQUIRE(q->read(r, st));
  // Damage on disk after the queue passed its recovery scan: record 15000's payload.
  auto segs = files(d.path, ".dat");
  REQUIRE(segs.size() == 1);
  std::string bytes = read_file(segs[0]);
  std::size_t off = 0;
  for (int i = 0; i < 15000; ++i) off += 8 + static_cast<unsigned char>(bytes[off]);
  {
    std::fstream f(segs[0], std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(off + 8 + 3));
    f.put(static_cast<char>(bytes[off + 8 + 3] ^ 0x20));
  }
  std::vector<std::string> got;
  std::vector<std::string> errors;
  for (int guard = 0; guard < 5; ++guard) {
    while (q->read(r, st)) got.push_back(r);
    if (st.ok()) break;
    errors.push_back(st.error);
    st = {};
  }
  std::vector<std::string> want = expected(10, 15000);
  for (auto& w : expected(15001, 20000)) want.push_back(w);
  CHECK(got.size() == want.size());
  CHECK(got == want);
  REQUIRE(errors.size() == 1);
  CHECK_THAT(errors[0], Catch::Contains("checksum mismatch at byte " + std::to_string(off)) &&
                            Catch::Contains("(1 record) skipped"));
  CHECK(q->depth() == 0);
}
