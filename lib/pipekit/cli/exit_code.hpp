#pragma once
// The one place that holds pipekit's exit numbers: sysexits.h values, plus 1 for an
// expected failure the program reports (a revert, a failed transaction) and 130 for SIGINT.
namespace pipekit::exit_code {
constexpr int ok = 0;
constexpr int failure = 1;        // the request ran and failed (revert, failed status)
constexpr int usage = 64;         // EX_USAGE: bad flags or arguments
constexpr int data_error = 65;    // EX_DATAERR: some input could not be used
constexpr int no_input = 66;      // EX_NOINPUT: an input file is missing or unreadable
constexpr int unavailable = 69;   // EX_UNAVAILABLE: a peer cannot be reached
constexpr int software = 70;      // EX_SOFTWARE: internal error
constexpr int io_error = 74;      // EX_IOERR: reading or writing failed
constexpr int temp_fail = 75;     // EX_TEMPFAIL: try again later
constexpr int no_perm = 77;       // EX_NOPERM: permission denied (e.g. NSQ AUTH refused)
constexpr int config = 78;        // EX_CONFIG: bad configuration
constexpr int interrupted = 130;  // SIGINT
}  // namespace pipekit::exit_code
