#!/usr/bin/env node
// Writes a seeded corpus of realistic ABI cases as JSON Lines {"name","sig","args"} for the ABI
// benchmarks (abi_ethers.mjs, abi_bench.cpp). The signatures are the argument lists of calls that
// real contracts see (ERC-20/721/1155, Uniswap v2/v3 routers, Multicall, Safe, Permit2, Seaport-like
// orders, Chainlink answers); values use pipekit's JSON mapping, which ethers also accepts.
//
//   node bench/abi/gen_corpus.mjs [--count 2000] [--seed 7] [--out FILE]   (default: stdout)
import { writeFileSync } from 'node:fs';

const opts = { count: 2000, seed: 7, out: null };
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  const v = process.argv[++i];
  if (v === undefined) { process.stderr.write(`gen_corpus: ${a} needs a value\n`); process.exit(64); }
  if (a === '--count') opts.count = Number.parseInt(v, 10);
  else if (a === '--seed') opts.seed = Number.parseInt(v, 10) >>> 0;
  else if (a === '--out') opts.out = v;
  else { process.stderr.write(`gen_corpus: unknown argument ${a}\n`); process.exit(64); }
}

// xorshift32, seeded; good enough to pick values.
let state = (opts.seed ^ 0x2545f491) >>> 0 || 1;
function u32() {
  state ^= state << 13; state >>>= 0;
  state ^= state >>> 17;
  state ^= state << 5; state >>>= 0;
  return state;
}
const int = (n) => u32() % n;
const range = (lo, hi) => lo + int(hi - lo + 1);
const pick = (a) => a[int(a.length)];
const hexBytes = (n) => { let s = '0x'; for (let i = 0; i < n; i++) s += (u32() & 0xff).toString(16).padStart(2, '0'); return s; };

// A pool of addresses, as the corpus of a real workload repeats tokens and users.
const ADDRESSES = ['0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2', '0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48',
  '0xdAC17F958D2ee523a2206206994597C13D831ec7', '0x6B175474E89094C44Da98b954EedeAC495271d0F',
  '0x1f9840a85d5aF5bf1D1762F925BDADdC4201F984', '0x7a250d5630B4cF539739dF2C5dAcb4c659F2488D',
  '0xE592427A0AEce92De3Edee1F18E0157C05861564', '0x000000000022D473030F116dDEE9F6B43aC78BA3',
  '0xd8dA6BF26964aF9D7eEd9e03E53415D37aA96045', '0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266',
  '0x70997970C51812dc3A010C7d01b50e0d17dc79C8', '0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC'];
const addr = () => pick(ADDRESSES);
// Token amounts: mostly 18-decimal values beyond 2^53 (decimal strings), some small (numbers).
const amount = () => {
  if (int(4) === 0) return range(0, 1_000_000);
  const whole = BigInt(range(1, 10_000_000));
  return (whole * 10n ** BigInt(range(6, 18)) + BigInt(u32())).toString();
};
const deadline = () => 1_700_000_000 + range(0, 100_000_000);
const tokenId = () => (int(3) === 0 ? (BigInt(u32()) << 128n | BigInt(u32())).toString() : range(0, 10_000));
const b32 = () => hexBytes(32);
const v3path = (hops) => { let s = addr(); for (let i = 0; i < hops; i++) s += pick(['000bb8', '0001f4', '002710']) + addr().slice(2); return s.toLowerCase(); };

const TEMPLATES = [
  ['erc20.transfer', '(address to,uint256 amount)', () => [addr(), amount()]],
  ['erc20.approve', '(address spender,uint256 amount)', () => [addr(), int(3) === 0 ? (2n ** 256n - 1n).toString() : amount()]],
  ['erc20.transferFrom', '(address from,address to,uint256 amount)', () => [addr(), addr(), amount()]],
  ['erc20.balanceOf.ret', '(uint256)', () => [amount()]],
  ['erc20.metadata.ret', '(string name,string symbol,uint8 decimals)', () => [pick(['Wrapped Ether', 'USD Coin', 'Dai Stablecoin', 'Uniswap', 'Ünïcødé Tøken 🦄']), pick(['WETH', 'USDC', 'DAI', 'UNI']), pick([6, 8, 18])]],
  ['erc721.safeTransferFrom', '(address from,address to,uint256 tokenId,bytes data)', () => [addr(), addr(), tokenId(), hexBytes(pick([0, 0, 4, 36, 100]))]],
  ['erc721.tokenURI.ret', '(string)', () => [`ipfs://bafybei${hexBytes(23).slice(2)}/${range(0, 9999)}.json`]],
  ['erc1155.safeBatchTransferFrom', '(address from,address to,uint256[] ids,uint256[] amounts,bytes data)',
    () => { const n = range(1, 8); return [addr(), addr(), Array.from({ length: n }, tokenId), Array.from({ length: n }, () => range(1, 1000)), '0x']; }],
  ['erc2612.permit', '(address owner,address spender,uint256 value,uint256 deadline,uint8 v,bytes32 r,bytes32 s)',
    () => [addr(), addr(), amount(), deadline(), pick([27, 28]), b32(), b32()]],
  ['univ2.swapExactTokensForTokens', '(uint256 amountIn,uint256 amountOutMin,address[] path,address to,uint256 deadline)',
    () => [amount(), amount(), Array.from({ length: range(2, 4) }, addr), addr(), deadline()]],
  ['univ2.getReserves.ret', '(uint112 reserve0,uint112 reserve1,uint32 blockTimestampLast)', () => [amount(), amount(), deadline()]],
  ['univ3.exactInputSingle', '((address tokenIn,address tokenOut,uint24 fee,address recipient,uint256 deadline,uint256 amountIn,uint256 amountOutMinimum,uint160 sqrtPriceLimitX96) params)',
    () => [{ tokenIn: addr(), tokenOut: addr(), fee: pick([500, 3000, 10000]), recipient: addr(), deadline: deadline(), amountIn: amount(), amountOutMinimum: amount(), sqrtPriceLimitX96: 0 }]],
  ['univ3.exactInput', '((bytes path,address recipient,uint256 deadline,uint256 amountIn,uint256 amountOutMinimum) params)',
    () => [{ path: v3path(range(1, 3)), recipient: addr(), deadline: deadline(), amountIn: amount(), amountOutMinimum: amount() }]],
  ['univ3.slot0.ret', '(uint160 sqrtPriceX96,int24 tick,uint16 observationIndex,uint16 observationCardinality,uint16 observationCardinalityNext,uint8 feeProtocol,bool unlocked)',
    () => [amount(), range(-887272, 887272), range(0, 65535), range(1, 65535), range(1, 65535), 0, true]],
  ['multicall.multicall', '(bytes[] data)', () => [Array.from({ length: range(1, 6) }, () => '0xa9059cbb' + hexBytes(64).slice(2))]],
  ['multicall3.aggregate3', '((address target,bool allowFailure,bytes callData)[] calls)',
    () => [Array.from({ length: range(1, 10) }, () => ({ target: addr(), allowFailure: int(2) === 0, callData: '0x70a08231' + hexBytes(32).slice(2) }))]],
  ['multicall3.aggregate3.ret', '((bool success,bytes returnData)[] returnData)',
    () => [Array.from({ length: range(1, 10) }, () => ({ success: int(8) !== 0, returnData: hexBytes(32) }))]],
  ['safe.execTransaction', '(address to,uint256 value,bytes data,uint8 operation,uint256 safeTxGas,uint256 baseGas,uint256 gasPrice,address gasToken,address refundReceiver,bytes signatures)',
    () => [addr(), amount(), hexBytes(range(4, 200)), range(0, 1), 0, 0, 0, '0x0000000000000000000000000000000000000000', '0x0000000000000000000000000000000000000000', hexBytes(65 * range(1, 3))]],
  ['permit2.permitTransferFrom', '(((address token,uint256 amount) permitted,uint256 nonce,uint256 deadline) permit,(address to,uint256 requestedAmount) transferDetails,address owner,bytes signature)',
    () => [{ permitted: { token: addr(), amount: amount() }, nonce: range(0, 1000000), deadline: deadline() }, { to: addr(), requestedAmount: amount() }, addr(), hexBytes(65)]],
  ['seaport.order', '((address offerer,address zone,(uint8 itemType,address token,uint256 identifierOrCriteria,uint256 startAmount,uint256 endAmount)[] offer,(uint8 itemType,address token,uint256 identifierOrCriteria,uint256 startAmount,uint256 endAmount,address recipient)[] consideration,uint8 orderType,uint256 startTime,uint256 endTime,bytes32 zoneHash,uint256 salt,bytes32 conduitKey,uint256 totalOriginalConsiderationItems) parameters,bytes signature)',
    () => {
      const nc = range(1, 4);
      return [{
        offerer: addr(), zone: addr(),
        offer: Array.from({ length: range(1, 2) }, () => ({ itemType: range(0, 3), token: addr(), identifierOrCriteria: tokenId(), startAmount: 1, endAmount: 1 })),
        consideration: Array.from({ length: nc }, () => ({ itemType: 0, token: '0x0000000000000000000000000000000000000000', identifierOrCriteria: 0, startAmount: amount(), endAmount: amount(), recipient: addr() })),
        orderType: range(0, 3), startTime: deadline(), endTime: deadline(), zoneHash: b32(), salt: amount(), conduitKey: b32(), totalOriginalConsiderationItems: nc,
      }, hexBytes(64)];
    }],
  ['chainlink.latestRoundData.ret', '(uint80 roundId,int256 answer,uint256 startedAt,uint256 updatedAt,uint80 answeredInRound)',
    () => { const r = (18446744073709551616n * 5n + BigInt(u32())).toString(); return [r, pick([range(-100000000, 400000000000), amount()]), deadline(), deadline(), r]; }],
  ['event.Transfer.data', '(uint256 value)', () => [amount()]],
  ['event.Swap.data', '(int256 amount0,int256 amount1,uint160 sqrtPriceX96,uint128 liquidity,int24 tick)',
    () => [`-${amount()}`, amount(), amount(), amount(), range(-887272, 887272)]],
  ['governor.propose', '(address[] targets,uint256[] values,bytes[] calldatas,string description)',
    () => { const n = range(1, 4); return [Array.from({ length: n }, addr), Array.from({ length: n }, () => 0), Array.from({ length: n }, () => hexBytes(range(4, 132))), `# Proposal ${range(1, 500)}\n\nFund the grants programme with ${range(1, 100)}k tokens. ✅`]; }],
  ['merkle.claim', '(uint256 index,address account,uint256 amount,bytes32[] merkleProof)',
    () => [range(0, 100000), addr(), amount(), Array.from({ length: range(8, 18) }, b32)]],
];

// Weights: simple calls dominate real traffic.
const WEIGHTED = TEMPLATES.flatMap((t) => (t[0].startsWith('erc20') ? [t, t, t] : [t]));

const lines = [];
for (let i = 0; i < opts.count; i++) {
  const [name, sig, gen] = pick(WEIGHTED);
  lines.push(JSON.stringify({ name, sig, args: gen() }));
}
const text = lines.join('\n') + '\n';
if (opts.out) writeFileSync(opts.out, text);
else process.stdout.write(text);
