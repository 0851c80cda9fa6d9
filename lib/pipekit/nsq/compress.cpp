#include "pipekit/nsq/compress.hpp"

#include <snappy.h>
#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include <fmt/format.h>

#include "pipekit/io/crc32c.hpp"

namespace pipekit::nsq {

namespace {

// --- raw deflate --------------------------------------------------------------------------------

// Raw deflate both ways (RFC 1951, windowBits -15: no zlib header), as Go's compress/flate, nsqd
// and go-nsq use. Every encode ends with a sync flush so the peer can act on what it got.
class deflate_encoder final : public stream_encoder {
 public:
  explicit deflate_encoder(int level) {
    if (deflateInit2(&z_, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
      throw std::runtime_error("deflateInit2 failed");
  }
  ~deflate_encoder() override { deflateEnd(&z_); }
  deflate_encoder(const deflate_encoder&) = delete;
  deflate_encoder& operator=(const deflate_encoder&) = delete;

  void encode(std::string_view plain, std::string& out) override {
    if (finished_) return;
    run(plain, Z_SYNC_FLUSH, out);
  }
  void finish(std::string& out) override {
    if (finished_) return;
    run({}, Z_FINISH, out);
    finished_ = true;
  }

 private:
  void run(std::string_view plain, int mode, std::string& out) {
    z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(plain.data()));
    z_.avail_in = static_cast<uInt>(plain.size());
    do {
      const std::size_t at = out.size();
      const std::size_t room = deflateBound(&z_, z_.avail_in) + 64;
      out.resize(at + room);
      z_.next_out = reinterpret_cast<Bytef*>(out.data() + at);
      z_.avail_out = static_cast<uInt>(room);
      ::deflate(&z_, mode);
      out.resize(at + (room - z_.avail_out));
    } while (z_.avail_in > 0 || z_.avail_out == 0);
  }

  z_stream z_{};
  bool finished_ = false;
};

}  // namespace

bool stream_decoder::decode(std::string_view data, std::string& out, std::size_t max_out) {
  if (!error_.empty()) return false;
  if (pending_.empty()) {
    std::string_view rest = data;
    const bool ok = decode_some(rest, out, max_out);
    if (ok && !rest.empty()) pending_.assign(rest);
    return ok;
  }
  pending_.append(data);
  std::string_view rest = pending_;
  const bool ok = decode_some(rest, out, max_out);
  pending_.erase(0, pending_.size() - rest.size());
  return ok;
}

namespace {

class deflate_decoder final : public stream_decoder {
 public:
  deflate_decoder() {
    if (inflateInit2(&z_, -15) != Z_OK) throw std::runtime_error("inflateInit2 failed");
  }
  ~deflate_decoder() override { inflateEnd(&z_); }
  deflate_decoder(const deflate_decoder&) = delete;
  deflate_decoder& operator=(const deflate_decoder&) = delete;

  bool decode_some(std::string_view& data, std::string& out, std::size_t max_out) override {
    if (ended_) {  // after the final block: the peer is closing; ignore the rest
      data = {};
      return true;
    }
    z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
    z_.avail_in = static_cast<uInt>(data.size());
    std::size_t produced = 0;
    while ((z_.avail_in > 0 || more_) && produced < max_out) {
      const std::size_t at = out.size();
      const std::size_t room =
          std::min<std::size_t>(std::max<std::size_t>(std::size_t{z_.avail_in} * 4, 64 * 1024), max_out - produced);
      out.resize(at + room);
      z_.next_out = reinterpret_cast<Bytef*>(out.data() + at);
      z_.avail_out = static_cast<uInt>(room);
      const int rc = ::inflate(&z_, Z_SYNC_FLUSH);
      const std::size_t got = room - z_.avail_out;
      out.resize(at + got);
      produced += got;
      more_ = z_.avail_out == 0;  // the room ran out: zlib may hold more
      if (rc == Z_STREAM_END) {
        ended_ = true;
        more_ = false;
        break;
      }
      if (rc == Z_BUF_ERROR) {  // no progress possible: it needs more input
        more_ = false;
        break;
      }
      if (rc != Z_OK) return fail(fmt::format("bad deflate stream: {}", z_.msg ? z_.msg : zError(rc)));
    }
    data.remove_prefix(data.size() - z_.avail_in);
    return true;
  }
  bool more_output() const override { return more_; }

 private:
  z_stream z_{};
  bool ended_ = false;
  bool more_ = false;
};

// --- snappy framing format ----------------------------------------------------------------------

void put_le24(char* p, std::size_t v) noexcept {
  p[0] = static_cast<char>(v & 0xff);
  p[1] = static_cast<char>((v >> 8) & 0xff);
  p[2] = static_cast<char>((v >> 16) & 0xff);
}

void put_le32(char* p, std::uint32_t v) noexcept {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

std::uint32_t get_le32(const char* p) noexcept {
  std::uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

// Chunks of at most 64 KiB of input each, compressed with libsnappy unless that saves less than
// 1/8 (then stored, as golang/snappy's Writer does), each with the masked CRC-32C of its input.
class snappy_encoder final : public stream_encoder {
 public:
  void encode(std::string_view plain, std::string& out) override {
    if (!started_) {
      out.append(snappy_frame::identifier_chunk);
      started_ = true;
    }
    while (!plain.empty()) {
      const std::string_view block = plain.substr(0, snappy_frame::max_block);
      plain.remove_prefix(block.size());
      const std::uint32_t crc = io::crc32c_mask(io::crc32c(block));
      const std::size_t at = out.size();
      out.resize(at + 8 + snappy::MaxCompressedLength(block.size()));
      char* p = out.data() + at;
      std::size_t n = 0;
      snappy::RawCompress(block.data(), block.size(), p + 8, &n);
      if (n >= block.size() - block.size() / 8) {
        p[0] = static_cast<char>(snappy_frame::uncompressed);
        std::memcpy(p + 8, block.data(), block.size());
        n = block.size();
      } else {
        p[0] = static_cast<char>(snappy_frame::compressed);
      }
      put_le24(p + 1, n + 4);
      put_le32(p + 4, crc);
      out.resize(at + 8 + n);
    }
  }

 private:
  bool started_ = false;
};

// A chunk is decoded straight from the caller's data when it arrives whole, else gathered in
// body_ (kept between calls) until it is complete. Skippable chunks are skipped as they pass.
class snappy_decoder final : public stream_decoder {
 public:
  bool decode_some(std::string_view& data, std::string& out, std::size_t max_out) override {
    const std::size_t start = out.size();
    while (!data.empty() && out.size() - start < max_out) {
      if (skip_ > 0) {
        const std::size_t n = std::min(skip_, data.size());
        skip_ -= n;
        data.remove_prefix(n);
        continue;
      }
      if (header_len_ < 4) {
        const std::size_t n = std::min<std::size_t>(4 - header_len_, data.size());
        std::memcpy(header_ + header_len_, data.data(), n);
        header_len_ += n;
        data.remove_prefix(n);
        if (header_len_ < 4) break;
        if (!start_chunk()) return false;
        if (header_len_ == 0) continue;  // a skippable chunk: skipped as it passes
      }
      std::string_view chunk;
      if (body_.empty() && data.size() >= chunk_len_) {
        chunk = data.substr(0, chunk_len_);  // whole in the caller's data: no copy
        data.remove_prefix(chunk_len_);
      } else {
        const std::size_t n = std::min(chunk_len_ - body_.size(), data.size());
        body_.append(data.data(), n);
        data.remove_prefix(n);
        if (body_.size() < chunk_len_) break;
        chunk = body_;
      }
      const bool ok = finish_chunk(chunk, out);
      body_.clear();
      header_len_ = 0;
      if (!ok) return false;
    }
    return true;
  }

 private:
  // The header is complete: check the type and length.
  bool start_chunk() {
    const auto type = static_cast<unsigned char>(header_[0]);
    const auto* h = reinterpret_cast<const unsigned char*>(header_);
    chunk_len_ = std::size_t{h[1]} | std::size_t{h[2]} << 8 | std::size_t{h[3]} << 16;
    if (!seen_identifier_ && type != snappy_frame::stream_identifier)
      return fail(fmt::format("snappy stream does not start with a stream identifier (chunk type 0x{:02x})", type));
    if (type == snappy_frame::stream_identifier) {
      if (chunk_len_ != 6) return fail("bad snappy stream identifier");
    } else if (type == snappy_frame::compressed) {
      if (chunk_len_ < 4 || chunk_len_ > 4 + snappy::MaxCompressedLength(snappy_frame::max_block))
        return fail(fmt::format("bad snappy compressed chunk length {}", chunk_len_));
    } else if (type == snappy_frame::uncompressed) {
      if (chunk_len_ < 4 || chunk_len_ > 4 + snappy_frame::max_block)
        return fail(fmt::format("bad snappy uncompressed chunk length {}", chunk_len_));
    } else if (type >= 0x80) {  // padding 0xfe and the skippable 0x80-0xfd
      skip_ = chunk_len_;
      header_len_ = 0;
      chunk_len_ = 0;
      return true;
    } else {
      return fail(fmt::format("unknown unskippable snappy chunk type 0x{:02x}", type));
    }
    return true;
  }

  bool finish_chunk(std::string_view chunk, std::string& out) {
    const auto type = static_cast<unsigned char>(header_[0]);
    if (type == snappy_frame::stream_identifier) {
      if (chunk != snappy_frame::identifier_chunk.substr(4)) return fail("bad snappy stream identifier");
      seen_identifier_ = true;
      return true;
    }
    const std::uint32_t want = get_le32(chunk.data());
    chunk.remove_prefix(4);
    const std::size_t at = out.size();
    std::size_t n = chunk.size();
    if (type == snappy_frame::compressed) {
      if (!snappy::GetUncompressedLength(chunk.data(), chunk.size(), &n) || n > snappy_frame::max_block)
        return fail("corrupt snappy compressed chunk");
      out.resize(at + n);
      if (!snappy::RawUncompress(chunk.data(), chunk.size(), out.data() + at)) {
        out.resize(at);
        return fail("corrupt snappy compressed chunk");
      }
    } else {
      out.append(chunk);
    }
    const std::uint32_t got = io::crc32c_mask(io::crc32c(std::string_view(out).substr(at, n)));
    if (got != want) {
      out.resize(at);
      return fail(fmt::format("snappy chunk checksum mismatch (0x{:08x}, expected 0x{:08x})", got, want));
    }
    return true;
  }

  char header_[4] = {};
  std::size_t header_len_ = 0;
  std::size_t chunk_len_ = 0;
  std::size_t skip_ = 0;
  std::string body_;
  bool seen_identifier_ = false;
};

}  // namespace

std::unique_ptr<stream_encoder> make_deflate_encoder(int level) { return std::make_unique<deflate_encoder>(level); }
std::unique_ptr<stream_decoder> make_deflate_decoder() { return std::make_unique<deflate_decoder>(); }
std::unique_ptr<stream_encoder> make_snappy_encoder() { return std::make_unique<snappy_encoder>(); }
std::unique_ptr<stream_decoder> make_snappy_decoder() { return std::make_unique<snappy_decoder>(); }

stream_codec make_deflate_codec(int level) {
  return {compression::deflate, make_deflate_encoder(level), make_deflate_decoder()};
}

stream_codec make_snappy_codec() { return {compression::snappy, make_snappy_encoder(), make_snappy_decoder()}; }

}  // namespace pipekit::nsq
