#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

// Stream compression of an NSQ V2 connection, negotiated in IDENTIFY and used both ways from the
// frame after the IDENTIFY response: raw deflate (RFC 1951, no zlib header, as Go's compress/flate)
// or snappy's framing format (https://github.com/google/snappy/blob/main/framing_format.txt, as
// golang/snappy's Reader/Writer and nsqjs's snappystream). Used by nsq-broker's connections and by
// the client (nsq-pub, nsq-tail). Encoders and decoders are single-threaded and keep their buffers
// between calls, so a warmed-up stream does not allocate.
namespace pipekit::nsq {

// One direction, out.
class stream_encoder {
 public:
  virtual ~stream_encoder() = default;
  // Appends to out the compressed form of plain, flushed: the peer can decode everything given so far.
  virtual void encode(std::string_view plain, std::string& out) = 0;
  // Appends the end of the stream (deflate's final block; nothing for snappy).
  virtual void finish(std::string& out) { (void)out; }
};

// One direction, in.
class stream_decoder {
 public:
  virtual ~stream_decoder() = default;
  // Appends to out the plain bytes that data completes; data may split the stream anywhere.
  // Returns false for a corrupt stream (error() says why); the decoder then stays failed.
  bool decode(std::string_view data, std::string& out) { return decode(data, out, SIZE_MAX); }
  // The same, appending about max_out bytes at most (one more step at most: an inflate call's
  // output or one snappy chunk of <= 64 KiB). Input not decoded yet is kept; has_pending() says
  // that a call with no new data would give more. A daemon decodes a bounded amount per turn of
  // its event loop this way, so 61 KB of deflate cannot become 60 MB of commands at once.
  bool decode(std::string_view data, std::string& out, std::size_t max_out);
  bool has_pending() const { return !pending_.empty() || more_output(); }
  const std::string& error() const noexcept { return error_; }

 protected:
  // Consumes from data (advancing it) and appends to out, until data is used up or out has grown
  // by max_out.
  virtual bool decode_some(std::string_view& data, std::string& out, std::size_t max_out) = 0;
  // True when the decoder holds output it could give without more input.
  virtual bool more_output() const { return false; }
  bool fail(std::string why) {
    error_ = std::move(why);
    return false;
  }
  std::string error_;

 private:
  std::string pending_;  // input not decoded yet
};

enum class compression { none, deflate, snappy };

// Both directions of one connection.
struct stream_codec {
  compression kind = compression::none;
  std::unique_ptr<stream_encoder> encoder;
  std::unique_ptr<stream_decoder> decoder;
  explicit operator bool() const noexcept { return encoder != nullptr; }
};

// level 1..9. Throws std::runtime_error when zlib cannot start (out of memory).
std::unique_ptr<stream_encoder> make_deflate_encoder(int level);
std::unique_ptr<stream_decoder> make_deflate_decoder();
std::unique_ptr<stream_encoder> make_snappy_encoder();
std::unique_ptr<stream_decoder> make_snappy_decoder();
stream_codec make_deflate_codec(int level);
stream_codec make_snappy_codec();

// Snappy framing format constants.
namespace snappy_frame {
constexpr unsigned char stream_identifier = 0xff;
constexpr unsigned char compressed = 0x00;
constexpr unsigned char uncompressed = 0x01;
constexpr unsigned char padding = 0xfe;
constexpr std::size_t max_block = 65536;  // uncompressed bytes per chunk
constexpr std::string_view identifier_chunk{"\xff\x06\x00\x00sNaPpY", 10};
}  // namespace snappy_frame

}  // namespace pipekit::nsq
