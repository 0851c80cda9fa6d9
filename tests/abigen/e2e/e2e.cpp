// abigen-cpp's end-to-end program: bindings generated at build time (pipekit_abigen) for the
// contracts in contracts/, built against an installed pipekit, run against a node (anvil):
//   ETH_RPC_URL=http://127.0.0.1:8545 ETH_PRIVATE_KEY=0x... ./e2e
// Each check prints "ok: ..." or "FAIL: ..."; the exit status is 1 when any failed, 2 when an
// exception escaped a section (the section is named).
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <functional>
#include <string>
#include <typeinfo>
#include <vector>

#include <pipekit/eth/contract.hpp>
#include <pipekit/eth/keccak.hpp>
#include <pipekit/eth/keystore.hpp>

#include "calldemo.hpp"
#include "events.hpp"
#include "overloads.hpp"
#include "shapes.hpp"
#include "token.hpp"
#include "vault.hpp"

namespace eth = pipekit::eth;

namespace {

int failures = 0;

std::string show(const std::string& s) { return "\"" + s + "\""; }
std::string show(const eth::address& a) { return a.hex(); }
template <std::size_t N>
std::string show(const eth::fixed_bytes<N>& b) {
  return b.hex();
}
std::string show(const eth::uint256& v) { return v.str(); }
std::string show(bool b) { return b ? "true" : "false"; }
template <class T>
  requires std::is_integral_v<T>
std::string show(T v) {
  return std::to_string(v);
}
std::string show(const std::vector<eth::uint256>& v) {
  std::string out = "[";
  for (const auto& e : v) out += (out.size() > 1 ? ", " : "") + e.str();
  return out + "]";
}
template <class T>
std::string show(const std::vector<T>& v) {
  return std::to_string(v.size()) + " elements";
}
template <class T>
  requires requires(const T& t) { T::to_abi(t); }
std::string show(const T& v) {
  return T::to_abi(v).dump();
}

void pass(const std::string& what) { std::printf("ok: %s\n", what.c_str()); }
void fail(const std::string& what, const std::string& why) {
  ++failures;
  std::printf("FAIL: %s: %s\n", what.c_str(), why.c_str());
}

template <class A, class B>
void check_eq(const std::string& what, const A& got, const B& want) {
  if (got == want) pass(what + " = " + show(got));
  else fail(what, "got " + show(got) + ", want " + show(want));
}

// f() must throw E; check(e) looks at it.
template <class E>
void expect_throw(const std::string& what, const std::function<void()>& f,
                  const std::function<void(const E&)>& check = [](const E&) {}) {
  try {
    f();
    fail(what, std::string("no exception, want ") + typeid(E).name());
  } catch (const E& e) {
    pass(what + " threw " + typeid(E).name() + " (" + e.what() + ")");
    check(e);
  } catch (const std::exception& e) {
    fail(what, std::string("threw ") + typeid(e).name() + " (" + e.what() + "), want " + typeid(E).name());
  }
}

// Runs one section; an exception escaping it is a failure naming the section.
bool section(const char* name, const std::function<void()>& body) {
  std::printf("-- %s\n", name);
  try {
    body();
    return true;
  } catch (const std::exception& e) {
    std::printf("FAIL: %s: unexpected %s: %s\n", name, typeid(e).name(), e.what());
    ++failures;
    return false;
  }
}

eth::hash hash_of(std::string_view text) { return eth::hash{eth::keccak256(text)}; }
eth::hash hash_of(const eth::bytes& b) { return eth::hash{eth::keccak256(b)}; }

eth::hash tag_of(std::uint8_t fill) {
  eth::hash h;
  h.data.fill(fill);
  return h;
}

// anvil's second dev account (its fixed test mnemonic): unlocked, so the node signs for it.
const eth::address alice = eth::address::from_hex("0x70997970C51812dc3A010C7d01b50e0d17dc79C8");
// The third: only ever a recipient.
const eth::address bob = eth::address::from_hex("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC");

}  // namespace

int main() {
  const char* url = std::getenv("ETH_RPC_URL");
  if (url == nullptr || *url == '\0') {
    std::fputs("e2e: ETH_RPC_URL is not set\n", stderr);
    return 64;
  }
  eth::rpc_client client({.url = url});
  const eth::signer me = eth::local_signer(eth::load_key_env("ETH_PRIVATE_KEY"));
  const eth::address my_address = eth::address::from_hex(me.from);
  const eth::signer as_alice = eth::node_signer(alice);

  section("CallDemo: deploy, get, set", [&] {
    const auto demo = calldemo::CallDemo::deploy(client, me);
    check_eq("CallDemo.get()", demo.get(), eth::uint256(2020));
    std::printf("%s\n", demo.get().str().c_str());
    const eth::receipt r = demo.set(me, eth::uint256(7));
    check_eq("CallDemo.set(7): receipt of a mined transaction", r.block_number > 0, true);
    check_eq("CallDemo.get() after set(7)", demo.get(), eth::uint256(7));
    const auto changed = demo.logs<calldemo::CallDemo::ValueChanged>();
    if (changed.size() != 1) return fail("ValueChanged events", std::to_string(changed.size()) + ", want 1");
    check_eq("ValueChanged.by", changed[0].by, my_address);
    check_eq("ValueChanged.oldValue", changed[0].oldValue, eth::uint256(2020));
    check_eq("ValueChanged.newValue", changed[0].newValue, eth::uint256(7));
    check_eq("ValueChanged: its transaction", changed[0].log.tx_hash, r.tx_hash);
  });

  section("Token: an ERC-20, its events, followed", [&] {
    const eth::uint256 supply("1000000000000000000000000");  // 10^6 tokens of 18 decimals
    const auto token = token::Token::deploy(client, me, "Pipekit Token", "PKT", supply);
    check_eq("Token.name()", token.name(), std::string("Pipekit Token"));
    check_eq("Token.symbol()", token.symbol(), std::string("PKT"));
    check_eq("Token.decimals()", token.decimals(), std::uint8_t{18});
    check_eq("Token.balanceOf(me)", token.balanceOf(my_address), supply);

    const eth::receipt sent = token.transfer(me, alice, eth::uint256(250));
    check_eq("Token.balanceOf(alice) after transfer(alice, 250)", token.balanceOf(alice), eth::uint256(250));
    check_eq("Token.call_transfer(bob, 1) (eth_call, nothing sent)",
             token.call_transfer(bob, eth::uint256(1), {.from = my_address}), true);
    check_eq("Token.estimate_transfer(bob, 1) > 21000", token.estimate_transfer(me, bob, eth::uint256(1)) > 21000,
             true);

    const auto all = token.logs<token::Token::Transfer>();
    check_eq("Transfer events (the mint and the transfer)", all.size(), std::size_t{2});
    const auto to_alice = token.logs<token::Token::Transfer>({.to = alice});
    if (to_alice.size() != 1) return fail("Transfer events to alice", std::to_string(to_alice.size()) + ", want 1");
    check_eq("Transfer.from", to_alice[0].from, my_address);
    check_eq("Transfer.to", to_alice[0].to, alice);
    check_eq("Transfer.value", to_alice[0].value, eth::uint256(250));
    check_eq("Transfer: its transaction", to_alice[0].log.tx_hash, sent.tx_hash);
    check_eq("Transfer: its contract", to_alice[0].log.contract, token.addr());
    check_eq("Transfer events to bob", token.logs<token::Token::Transfer>({.to = bob}).size(), std::size_t{0});

    token.approve(me, alice, eth::uint256(1000));
    const auto approvals = token.logs<token::Token::Approval>({.owner = my_address, .spender = alice});
    if (approvals.size() != 1) return fail("Approval events", std::to_string(approvals.size()) + ", want 1");
    check_eq("Approval.value", approvals[0].value, eth::uint256(1000));
    check_eq("Token.allowance(me, alice)", token.allowance(my_address, alice), eth::uint256(1000));
    token.transferFrom(as_alice, my_address, bob, eth::uint256(400));
    check_eq("Token.balanceOf(bob) after alice's transferFrom(me, bob, 400)", token.balanceOf(bob),
             eth::uint256(400));

    // Followed from the transfer's block: the past event first, then one sent while following
    // (by another client: this one is the follower's), then stop.
    std::vector<token::Token::Transfer> seen;
    eth::rpc_client sender({.url = url});
    const token::Token token_b(sender, token.addr());
    eth::follow_options fo;
    char from_block[32];
    std::snprintf(from_block, sizeof from_block, "0x%llx", static_cast<unsigned long long>(sent.block_number));
    fo.from_block = from_block;
    fo.poll_interval = std::chrono::milliseconds(100);
    const auto started = std::chrono::steady_clock::now();
    token.follow<token::Token::Transfer>(
        [&](const token::Token::Transfer& t) {
          seen.push_back(t);
          if (seen.size() == 1) token_b.transfer(me, bob, eth::uint256(5));
          return t.value != eth::uint256(5) && std::chrono::steady_clock::now() - started < std::chrono::seconds(60);
        },
        fo);
    if (seen.size() < 3) return fail("follow<Transfer>", std::to_string(seen.size()) + " events, want 3");
    check_eq("follow<Transfer>: first, the past transfer to alice", seen[0].log.tx_hash, sent.tx_hash);
    check_eq("follow<Transfer>: then alice's transferFrom", seen[1].value, eth::uint256(400));
    check_eq("follow<Transfer>: then the one sent while following", seen.back().value, eth::uint256(5));
    check_eq("follow<Transfer>: stopped by the callback after 3 events", seen.size(), std::size_t{3});

    // With a checkpoint file: the first follower takes the transfers so far (checkpointed after
    // each chunk) and stops at one sent while it follows; the second resumes after the checkpoint,
    // so that one is its first event: nothing before it again, nothing lost.
    char dir_template[] = "/tmp/pipekit-abigen-e2e.XXXXXX";
    const char* dir = mkdtemp(dir_template);
    if (dir == nullptr) return fail("mkdtemp", "cannot make a temporary directory");
    const std::string checkpoint = std::string(dir) + "/transfers.checkpoint";
    eth::follow_options fc = fo;
    fc.checkpoint = checkpoint;
    std::vector<eth::uint256> first_run, second_run;
    token.follow<token::Token::Transfer>(
        [&](const token::Token::Transfer& t) {
          first_run.push_back(t.value);
          if (t.value == eth::uint256(5)) token_b.transfer(me, bob, eth::uint256(6));
          return t.value != eth::uint256(6);
        },
        fc);
    const bool saved = std::filesystem::exists(checkpoint);
    fc.from_block.clear();  // from the checkpoint
    token.follow<token::Token::Transfer>(
        [&](const token::Token::Transfer& t) {
          second_run.push_back(t.value);
          return false;
        },
        fc);
    std::filesystem::remove_all(dir);
    check_eq("follow<Transfer> with a checkpoint: the checkpoint file written", saved, true);
    check_eq("follow<Transfer> with a checkpoint: the first follower's events", first_run,
             std::vector<eth::uint256>{eth::uint256(250), eth::uint256(400), eth::uint256(5), eth::uint256(6)});
    check_eq("follow<Transfer> resumed from the checkpoint: its first event", second_run,
             std::vector<eth::uint256>{eth::uint256(6)});

    expect_throw<token::Token::Unauthorized>(
        "Token.call_mint from alice (eth_call)",
        [&] { token.call_mint(alice, eth::uint256(1), {.from = alice}); },
        [&](const token::Token::Unauthorized& e) { check_eq("Unauthorized.caller", e.caller, alice); });
    expect_throw<token::Token::Unauthorized>(
        "Token.mint sent by alice (a transaction)", [&] { token.mint(as_alice, alice, eth::uint256(1)); },
        [&](const token::Token::Unauthorized& e) { check_eq("Unauthorized.caller", e.caller, alice); });
    expect_throw<token::Token::Insufficient>(
        "Token.transfer beyond alice's balance", [&] { token.transfer(as_alice, bob, eth::uint256(10000)); },
        [&](const token::Token::Insufficient& e) {
          check_eq("Insufficient.need", e.need, eth::uint256(10000));
          check_eq("Insufficient.have", e.have, eth::uint256(250));
        });
    expect_throw<eth::contract_error>("a custom error is a contract_error",
                                      [&] { token.call_mint(bob, eth::uint256(1), {.from = bob}); });
  });

  section("Vault: value, reverts with reasons, a panic, custom errors", [&] {
    const auto vault = vault::Vault::deploy(client, me, eth::uint256(12345), my_address);
    check_eq("Vault.deposited() after a payable constructor with 12345 wei", vault.deposited(), eth::uint256(12345));
    const auto balance =
        client.call("eth_getBalance", nlohmann::json::array({vault.addr().hex(), "latest"})).get<std::string>();
    check_eq("eth_getBalance(vault)", balance, std::string("0x3039"));
    vault.deposit(me, eth::uint256(55));
    check_eq("Vault.deposited() after deposit{value: 55}", vault.deposited(), eth::uint256(12400));
    const auto deposits = vault.logs<vault::Vault::Deposited>({.from = my_address});
    if (deposits.size() != 1) return fail("Deposited events", std::to_string(deposits.size()) + ", want 1");
    check_eq("Deposited.amount", deposits[0].amount, eth::uint256(55));

    expect_throw<eth::revert_error>(
        "Vault.checkPositive(0): require with a reason (eth_call)", [&] { vault.checkPositive(eth::uint256(0)); },
        [&](const eth::revert_error& e) {
          check_eq("revert_error.reason()", e.reason(), std::string("x must be positive"));
          check_eq("revert_error.what()", std::string(e.what()), std::string("reverted: x must be positive"));
        });
    expect_throw<eth::revert_error>(
        "Vault.deposit with no value: require with a reason (a transaction)",
        [&] { vault.deposit(me, eth::uint256(0)); },
        [&](const eth::revert_error& e) {
          check_eq("revert_error.reason()", e.reason(), std::string("deposit: no value"));
        });
    expect_throw<eth::panic_error>(
        "Vault.divide(1, 0): a Panic", [&] { vault.divide(eth::uint256(1), eth::uint256(0)); },
        [&](const eth::panic_error& e) {
          check_eq("panic_error.code() (division by zero)", e.code(), std::uint64_t{0x12});
        });
    check_eq("Vault.divide(84, 2)", vault.divide(eth::uint256(84), eth::uint256(2)), eth::uint256(42));
    expect_throw<vault::Vault::Unauthorized>(
        "Vault.withdraw by alice", [&] { vault.withdraw(as_alice, eth::uint256(1)); },
        [&](const vault::Vault::Unauthorized& e) { check_eq("Unauthorized.caller", e.caller, alice); });
    expect_throw<vault::Vault::Insufficient>(
        "Vault.withdraw beyond the deposits", [&] { vault.withdraw(me, eth::uint256(1000000)); },
        [&](const vault::Vault::Insufficient& e) {
          check_eq("Insufficient.need", e.need, eth::uint256(1000000));
          check_eq("Insufficient.have", e.have, eth::uint256(12400));
        });
    vault.withdraw(me, eth::uint256(400));
    check_eq("Vault.deposited() after withdraw(400)", vault.deposited(), eth::uint256(12000));
  });

  section("Overloads: one of each arity", [&] {
    const auto o = overloads::Overloads::deploy(client, me);
    check_eq("Overloads.f()", o.f(), eth::uint256(100));
    check_eq("Overloads.f(21)", o.f(eth::uint256(21)), eth::uint256(42));
    const auto [sum, who] = o.f(eth::uint256(5), alice);
    check_eq("Overloads.f(5, alice): first output", sum, eth::uint256(8));
    check_eq("Overloads.f(5, alice): second output", who, alice);
    check_eq("Overloads.f(0, 0x0, \"x\")", o.f(eth::uint256(0), eth::address(), std::string("x")),
             std::string("x:zero:none"));
    o.add(me);
    o.add(me, eth::uint256(5));
    o.add(me, eth::uint256(2), eth::uint256(3));
    check_eq("Overloads.total() after add(), add(5), add(2, 3)", o.total(), eth::uint256(12));
  });

  section("Shapes: nested structs and struct arrays, in and out", [&] {
    const auto s = shapes::Shapes::deploy(client, me);
    shapes::Box box;
    box.owner = alice;
    box.head = {1, "head", tag_of(0xaa)};
    box.items = {{2, "first", tag_of(0x01)}, {3, "second", tag_of(0x02)}};
    const eth::uint256 max = ~eth::uint256(0);  // 2^256 - 1
    box.size = {eth::uint256(7), max};
    box.offset = -5;
    check_eq("Shapes.echo(box)", s.echo(box), box);
    shapes::Box other = box;
    other.items.clear();
    other.offset = 2147483647;
    const std::vector<shapes::Box> boxes = {box, other, box};
    const auto echoed = s.echoAll(boxes);
    check_eq("Shapes.echoAll([box, other, box])", echoed == boxes, true);
    const auto [id_sum, count, first] = s.summary(box.items);
    check_eq("Shapes.summary(items): idSum", id_sum, eth::uint256(5));
    check_eq("Shapes.summary(items): count", count, eth::uint256(2));
    check_eq("Shapes.summary(items): first", first, std::string("first"));
    s.keep(me, box);
    check_eq("Shapes.stored() after keep(box)", s.stored(), box);
  });

  section("Events: indexed string, bytes and struct as hashes", [&] {
    const auto ev = events::Events::deploy(client, me);
    const eth::bytes blob = {1, 2, 3, 0xff};
    const events::Tag tag{"weight", 9};
    ev.note(me, "topic-1", blob, tag);
    ev.note(me, "topic-2", eth::bytes{}, events::Tag{"other", 1});
    const auto all = ev.logs<events::Events::Noted>();
    check_eq("Noted events", all.size(), std::size_t{2});
    const auto one = ev.logs<events::Events::Noted>({.topic = std::string("topic-1")});
    if (one.size() != 1)
      return fail("Noted events filtered by topic \"topic-1\"", std::to_string(one.size()) + ", want 1");
    check_eq("Noted.topic (keccak256 of the string)", one[0].topic, hash_of("topic-1"));
    check_eq("Noted.blob (keccak256 of the bytes)", one[0].blob, hash_of(blob));
    check_eq("Noted.text", one[0].text, std::string("topic-1"));
    check_eq("Noted.plain", one[0].plain, tag);
    check_eq("Noted.by", one[0].by, my_address);
    check_eq("Noted filtered by the struct", ev.logs<events::Events::Noted>({.tag = tag}).size(), std::size_t{1});
    check_eq("Noted filtered by the bytes", ev.logs<events::Events::Noted>({.blob = blob}).size(), std::size_t{1});
    check_eq("Noted filtered by a string never emitted",
             ev.logs<events::Events::Noted>({.topic = std::string("none")}).size(), std::size_t{0});
    ev.whisper(me, 7);
    const auto quiet = ev.logs<events::Events::Whispered>({.by = my_address});
    if (quiet.size() != 1) return fail("anonymous Whispered events", std::to_string(quiet.size()) + ", want 1");
    check_eq("Whispered.n (an anonymous event)", quiet[0].n, eth::uint256(7));
  });

  if (failures > 0) {
    std::printf("%d check(s) failed\n", failures);
    return 1;
  }
  std::printf("all checks passed\n");
  return 0;
}
