#!/usr/bin/env bash
# The main job, for now: ethcall's offline half in a pipeline. Calls are encoded from JSON Lines,
# decoded back, and a revert and a log are decoded, all without a node.
set -euo pipefail

token=0x5FbDB2315678afecb367f032d93F642f64180aa3
echo "== selectors"
ethcall selector 'transfer(address,uint256)'
ethcall selector 'balanceOf(address)'

echo "== three transfers encoded through one process (JSON Lines in, JSON Lines out)"
printf '%s\n' \
  '{"id":"a","args":["0x70997970C51812dc3A010C7d01b50e0d17dc79C8", 1]}' \
  '{"id":"b","args":["0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC", "1000000000000000000"]}' \
  '{"id":"c","args":["0x90F79bf6EB2c4f870365E785982E1f101E3b906", 3]}' |
  ethcall calldata 'transfer(address to,uint256 amount)' - --rejects /dev/null |
  tee /tmp/pipekit-demo-calls.jsonl || true
echo "(line c was rejected: its address has 39 hex digits; the others went on)"

echo "== and decoded back"
sed 's/.*"result":"\([^"]*\)".*/\1/' /tmp/pipekit-demo-calls.jsonl |
  sed 's/.*/"&"/' | ethcall decode-calldata 'transfer(address to,uint256 amount)' -

echo "== a revert: Error(string) and Panic(0x11)"
ethcall decode-error "$(ethcall calldata 'Error(string)' 'insufficient balance')"
ethcall decode-error 0x4e487b710000000000000000000000000000000000000000000000000000000000000011

echo "== an ERC-20 Transfer log"
from=000000000000000000000000f39fd6e51aad88f6f4ce6ab8827279cfffb92266
to=00000000000000000000000070997970c51812dc3a010c7d01b50e0d17dc79c8
topic0=$(ethcall keccak 'Transfer(address,address,uint256)')
echo "{\"address\":\"$token\",\"topics\":[\"$topic0\",\"0x$from\",\"0x$to\"],\"data\":\"$(ethcall abi-encode '(uint256)' 1000000000000000000)\",\"blockNumber\":\"0x10\",\"logIndex\":\"0x0\",\"removed\":false}" |
  ethcall decode-event --sig 'event Transfer(address indexed from, address indexed to, uint256 value)'
