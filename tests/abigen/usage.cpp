// Compiled (not run) by tests/abigen/compile_test.sh after the golden headers: the generated API
// as a user writes it (abigen-cpp(1), GENERATED API), so a change that breaks a caller fails here.
// The end-to-end run against anvil is tests/abigen/e2e_test.sh.
#include <cstdint>
#include <iostream>

namespace usage {
inline void calls(pipekit::eth::rpc_client& client, const pipekit::eth::signer& me, const pipekit::eth::address& to) {
  // deploy with constructor arguments; a payable constructor takes the value after `from`
  token::Token t = token::Token::deploy(client, me, "Token", "TOK", pipekit::eth::uint256(1000));
  vault::Vault v = vault::Vault::deploy(client, me, pipekit::eth::uint256(5), to);
  calldemo::CallDemo demo(client, t.addr());
  const pipekit::eth::uint256 got = demo.get();
  pipekit::eth::send_options deep;
  deep.wait.confirmations = 2;
  const pipekit::eth::receipt r = demo.set(me, got + 1, deep);
  pipekit::eth::call_options latest;
  latest.block = "latest";
  std::cout << r.tx_hash << demo.get(latest) << "\n";
  // views, sends, eth_call simulations and estimates
  const bool ok = t.call_transfer(to, 5);
  const std::uint64_t gas = t.estimate_transfer(me, to, 5);
  const std::uint8_t decimals = t.decimals();
  (void)ok, (void)gas, (void)decimals;
  v.deposit(me, pipekit::eth::uint256(2000));
  pipekit::eth::call_options as_to;
  as_to.from = to;
  v.call_deposit(pipekit::eth::uint256(2000), as_to);
  // typed errors
  try {
    v.withdraw(me, 1);
  } catch (const vault::Vault::Unauthorized& e) {
    std::cout << e.caller.hex() << e.data().size() << e.what();
  } catch (const vault::Vault::TooSmall& e) {
    std::cout << e.given << e.minimum;
  } catch (const pipekit::eth::contract_error&) {
  }
  // events: logs with a filter and a range, follow with a callback
  for (const auto& e : t.logs<token::Token::Transfer>({.from = to, .to = std::nullopt}, {.from_block = "0x1"}))
    std::cout << e.from.hex() << e.to.hex() << e.value << e.log.block_number;
  t.follow<token::Token::Transfer>([](const token::Token::Transfer& e) { return e.value > 0; }, {}, {.to = to});
  events::Events ev(client, to);
  for (const auto& e : ev.logs<events::Events::Named>({.name = std::string("alice")})) std::cout << e.name.hex();
  (void)ev.logs<events::Events::Listed>({.tag = events::Tag{.key = "k", .weight = 1}});
  // overloads of each arity, views and sends
  overloads::Overloads o(client, to);
  o.add(me);
  o.add(me, 1);
  o.add(me, 1, 2);
  o.add(me, 1, 2, "note");
  const pipekit::eth::uint256 p0 = o.peek();
  const pipekit::eth::uint256 p1 = o.peek(std::uint8_t{3});
  const overloads::Overloads::PeekResult p2 = o.peek(to, std::uint64_t{7});
  std::cout << p0 << p1 << p2.out0 << p2.out1.hex();
  // structs: nested, arrays of them, several outputs
  shapes::Shapes s(client, to);
  shapes::Polygon poly{.sides = {shapes::Segment{.from = {.x = 1, .owners = {to}}, .to = {}, .tag = {}}},
                       .corners = {},
                       .area = -5,
                       .label = "square"};
  s.store(me, poly);
  const std::vector<shapes::Segment> segs = s.segments({shapes::Point{.x = 1, .owners = {}}});
  const shapes::Shapes::StatsResult st = s.stats();
  std::cout << segs.size() << st.area << st.sides << st.empty << st.out3 << (s.origin() == shapes::Point{});
}
}  // namespace usage
