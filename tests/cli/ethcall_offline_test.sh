#!/usr/bin/env bash
# ethcall's offline commands, run as a user would. Expected encodings were produced with
# ethers v6 (AbiCoder / Interface), the ABI spec's oracle here; the solc part compiles a contract
# at test time and checks ethcall against what solc itself says.
source "$(dirname "$0")/lib.sh"

ADDR=0x70997970C51812dc3A010C7d01b50e0d17dc79C8
TRANSFER1=0xa9059cbb00000000000000000000000070997970c51812dc3a010c7d01b50e0d17dc79c80000000000000000000000000000000000000000000000000000000000000001

# --- program basics
run ethcall --version
expect "--version" 0
case $out in "ethcall "*"commit "*) ok ;; *) bad "--version names program, version, commit" ;; esac
run ethcall --help
expect "--help" 0
case $out in *keccak*decode-event*) ok ;; *) bad "--help lists the commands" ;; esac
run ethcall abi-decode --help
expect "command --help" 0
case $out in *--input*) ok ;; *) bad "abi-decode --help shows its flags" ;; esac
run ethcall --bogus
expect "unknown flag is a usage error" 64
expect_err "usage hint" "Run 'ethcall --help'"
run ethcall
expect "no command is a usage error" 64
# ethcall builds only the named command's group of flags (main.cpp's table): each command, named
# on its own, has the same flags as in the whole tree, and fewer commands are built beside it.
all_flags=$(ethcall --completions=flags)
all_commands=$(echo "$all_flags" | wc -l)
for cmd in $(echo "$all_flags" | sed -n 's/^ethcall \([a-z-]*\):.*/\1/p'); do
  mine=$(ethcall "$cmd" --completions=flags)
  check "$cmd: same flags as in the whole tree" test "$(echo "$mine" | grep "^ethcall $cmd:")" = "$(echo "$all_flags" | grep "^ethcall $cmd:")"
  check "$cmd: built with its group only ($(echo "$mine" | wc -l) of $all_commands lines)" test "$(echo "$mine" | wc -l)" -lt "$all_commands"
done
run ethcall -v keccak --help
expect "a global flag before the command" 0
case $out in *"ethcall keccak"*) ok ;; *) bad "keccak --help after -v" ;; esac
run ethcall keccak call
expect "a command name after the command is its argument (ethers: keccak256 of \"call\")" 0 \
  0x431a75a0d711dfe3639aae96eb8f9facc2fd74df5aa611067f2511cc9fefc229
run ethcall chain-id keccak
expect "a second command is an unexpected argument" 64

# --- keccak and selector
run ethcall keccak ''
expect "keccak of empty text" 0 0xc5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470
run ethcall keccak 0x
expect "keccak of empty bytes" 0 0xc5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470
run ethcall keccak hello
expect "keccak of text" 0 0x1c8aff950685c2ed4bc3174f3472287b56d9517b9c948127319a09a7a36deac8
run ethcall keccak --json hello
expect "keccak --json" 0 '"0x1c8aff950685c2ed4bc3174f3472287b56d9517b9c948127319a09a7a36deac8"'
run ethcall keccak 0xabc
expect "keccak of odd hex" 65
expect_err "odd hex message" "odd number of hex digits"
run ethcall selector 'transfer(address,uint256)'
expect "selector" 0 0xa9059cbb
run ethcall selector 'function transfer(address to, uint amount) external returns (bool)'
expect "selector of a human-readable signature" 0 0xa9059cbb

# --- calldata, abi-encode
run ethcall calldata 'transfer(address,uint256)' $ADDR 1
expect "calldata" 0 $TRANSFER1
run ethcall calldata 'transfer(address,uint256)' --json-args "[\"$ADDR\", \"0x1\"]"
expect "calldata --json-args with a hex integer" 0 $TRANSFER1
run ethcall abi-encode '((uint256,bytes)[],int8,bool)' '[(1,0x1234),(2,0x)]' -5 true
expect "abi-encode of cast-style tuple arrays" 0 0x0000000000000000000000000000000000000000000000000000000000000060fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffb00000000000000000000000000000000000000000000000000000000000000010000000000000000000000000000000000000000000000000000000000000002000000000000000000000000000000000000000000000000000000000000004000000000000000000000000000000000000000000000000000000000000000c00000000000000000000000000000000000000000000000000000000000000001000000000000000000000000000000000000000000000000000000000000004000000000000000000000000000000000000000000000000000000000000000021234000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000200000000000000000000000000000000000000000000000000000000000000400000000000000000000000000000000000000000000000000000000000000000
run ethcall abi-encode '(string,uint256[2])' 'a,b' '[7,8]'
expect "a string argument keeps its comma" 0 0x0000000000000000000000000000000000000000000000000000000000000060000000000000000000000000000000000000000000000000000000000000000700000000000000000000000000000000000000000000000000000000000000080000000000000000000000000000000000000000000000000000000000000003612c620000000000000000000000000000000000000000000000000000000000

# --- bad input: exit 65 with "ethcall: <where>: <what>"
run ethcall calldata 'f(uint8)' 300
expect "uint8 out of range" 65
expect_err "names the argument" "ethcall: arg 1 (uint8)"
run ethcall calldata 'f(int8)' -129
expect "int8 below range" 65
run ethcall calldata 'f(uint7)' 1
expect "unknown type" 65
expect_err "names the type" "uint7"
run ethcall calldata 'f(uint256' 1
expect "malformed signature" 65
run ethcall calldata 'f(address)' 0x70997970c51812dc3A010C7d01b50e0d17dc79C8
expect "bad checksum" 65
expect_err "says checksum" "checksum"
run ethcall calldata 'f(bytes2)' 0x123456
expect "bytesN of the wrong length" 65
run ethcall calldata 'f(uint256,uint256)' 1
expect "too few arguments" 65
expect_err "argument count" "arguments: expected 2"
run ethcall calldata 'f(uint256[2])' '[1,2,3]'
expect "fixed array of the wrong length" 65

# --- abi-decode and shapes
run ethcall abi-decode 'balanceOf(address)(uint256)' 0x0000000000000000000000000000000000000000000000000de0b6b3a7640000
expect "a single big integer comes out bare as a decimal string" 0 '"1000000000000000000"'
run ethcall abi-decode 'f()(uint256 a,bool b)' 0x00000000000000000000000000000000000000000000000000000000000000070000000000000000000000000000000000000000000000000000000000000001
expect "named outputs come out as an object" 0 '{"a":7,"b":true}'
run ethcall abi-decode --input 'f(uint256,bool)' 0x00000000000000000000000000000000000000000000000000000000000000070000000000000000000000000000000000000000000000000000000000000001
expect "--input decodes inputs; unnamed as an array" 0 '[7,true]'
run ethcall abi-decode 'f(uint256)' 0x00
expect "no outputs declared" 65
expect_err "suggests --input" "--input"
run ethcall abi-decode 'f()(bool)' 0x0000000000000000000000000000000000000000000000000000000000000002
expect "dirty bool padding is an error" 65
run ethcall abi-decode 'f()(uint256)' 0x00000000000000000000000000000000000000000000000000000000000001
expect "short data is an error" 65

# --- decode-calldata
run ethcall decode-calldata 'transfer(address to,uint256 amount)' $TRANSFER1
expect "decode-calldata" 0 "{\"args\":{\"amount\":1,\"to\":\"$ADDR\"},\"function\":\"transfer\",\"selector\":\"0xa9059cbb\",\"signature\":\"transfer(address,uint256)\"}"
run ethcall decode-calldata 'approve(address,uint256)' $TRANSFER1
expect "decode-calldata with the wrong selector" 65

# --- decode-error without an ABI
run ethcall decode-error 0x08c379a0000000000000000000000000000000000000000000000000000000000000002000000000000000000000000000000000000000000000000000000000000000046e6f706500000000000000000000000000000000000000000000000000000000
expect "Error(string)" 0 '{"kind":"error","message":"nope","signature":"Error(string)"}'
run ethcall decode-error 0x4e487b710000000000000000000000000000000000000000000000000000000000000012
expect "Panic(0x12) names division by zero" 0 '{"code":18,"code_hex":"0x12","kind":"panic","meaning":"division or modulo by zero"}'
run ethcall decode-error 0x
expect "empty revert data" 0 '{"kind":"empty"}'
run ethcall decode-error 0xe94fe3af0000000000000000000000000000000000000000000000000000000000000003000000000000000000000000000000000000000000000000000000000000000a
case $out in *'"kind":"unknown"'*'"selector":"0xe94fe3af"'*) ok ;; *) bad "unknown custom error without --abi" ;; esac

# --- stdin mode: answers in order, bad lines reported with their line number, the rest go on
printf '%s\n' '{"id":"a","args":["'$ADDR'",1]}' 'not json' '["'$ADDR'",-1]' '{"args":["'$ADDR'","2"]}' >"$T/in"
printf '%s' '["'$ADDR'",3]' >>"$T/in"   # a last line without newline
ethcall calldata 'transfer(address,uint256)' - --rejects "$T/rejects" <"$T/in" >"$T/out" 2>"$T/err"
status=$? out=$(cat "$T/out") err=$(cat "$T/err")
expect "stdin mode exits 65 when a line was rejected" 65
check "three answers" test "$(wc -l <"$T/out")" -eq 3
check "id echoed" grep -q "^{\"id\":\"a\",\"result\":\"$TRANSFER1\"}\$" "$T/out"
check "line number as id, in order" test "$(sed -n 2p "$T/out" | cut -c1-8)" = '{"id":4,'
check "last line without newline answered" test "$(sed -n 3p "$T/out" | cut -c1-8)" = '{"id":5,'
expect_err "invalid JSON reported with its line" "stdin:2: invalid JSON"
expect_err "range error reported with its line" "stdin:3: arg 2"
check "rejects file has 2 records" test "$(wc -l <"$T/rejects")" -eq 2
check "reject record shape" grep -q '^{"source":"stdin","line":2,"code":"invalid_json","error":"invalid JSON at column 2' "$T/rejects"

run_in "$(printf '%s\n' '{"sig":"transfer(address,uint256)","args":["'$ADDR'",1]}' '{"sig":"f(uint7)","args":[1]}')" ethcall calldata -
expect "stdin requests carrying their own signature" 65 "{\"id\":1,\"result\":\"$TRANSFER1\"}"
run_in $'"0x00000000000000000000000000000000000000000000000000000000000000ff"\n{"id":9,"data":"0x01"}\n' ethcall abi-decode 'f()(uint8)' -
expect "abi-decode with DATA from stdin" 65 '{"id":1,"result":255}'
expect_err "short data rejected" "stdin:2:"

# --- a reader that goes away ends ethcall quietly
for i in $(seq 1 20000); do echo '"x"'; done >"$T/many"
ethcall keccak - <"$T/many" 2>"$T/err" | head -n 1 >/dev/null
status=${PIPESTATUS[0]}
check "EPIPE: exit 0" test "$status" -eq 0
check "EPIPE: nothing on stderr" test ! -s "$T/err"

# --- JSON ABI files, compiled by solc at test time
if node "$PIPEKIT_SRC/tests/tools/solc_compile.mjs" "$PIPEKIT_SRC/tests/fixtures/contracts/Offline.sol" "$T/solc" >"$T/solc.log" 2>&1; then
  ok
  ABI=$T/solc/Offline.abi
  # Every selector solc computed equals ethcall's, from the canonical signature.
  node -e 'const j=require(process.argv[1]); for (const [sig, sel] of Object.entries(j.methodIdentifiers)) console.log(JSON.stringify({id:"0x"+sel, sig}))' \
    "$T/solc/Offline.json" >"$T/sigs"
  ethcall selector - <"$T/sigs" >"$T/sels"
  check "solc's method identifiers = ethcall selector" node -e '
    const fs=require("fs"); const lines=fs.readFileSync(process.argv[1],"utf8").trim().split("\n").map(JSON.parse);
    const n=fs.readFileSync(process.argv[2],"utf8").trim().split("\n").length;
    process.exit(lines.length===n && n>10 && lines.every(l=>l.id===l.result)?0:1)' "$T/sels" "$T/sigs"
  # Overloads by argument count and by signature.
  run ethcall calldata --abi "$ABI" 'echo(string)' hi
  check "overload chosen by signature" test "${out:0:10}" = "$(ethcall selector 'echo(string)')"
  run ethcall calldata --abi "$ABI" echo 1 0x12
  check "overload chosen by argument count" test "${out:0:10}" = "$(ethcall selector 'echo(uint256,bytes)')"
  run ethcall calldata --abi "$ABI" echo 1
  expect "ambiguous overload" 65
  expect_err "lists the candidates" "echo(int256)"
  # Custom errors from the ABI.
  run ethcall decode-error --abi "$ABI" 0xe94fe3af0000000000000000000000000000000000000000000000000000000000000003000000000000000000000000000000000000000000000000000000000000000a
  expect "custom error from the ABI" 0 '{"args":{"got":3,"min":10},"kind":"custom","name":"TooSmall","signature":"TooSmall(uint256,uint256)"}'
  # decode-calldata finds the function by selector.
  data=$(ethcall calldata --abi "$ABI" stats '[1,2,3]')
  run ethcall decode-calldata --abi "$ABI" "$data"
  expect "decode-calldata by selector" 0 '{"args":{"values":[1,2,3]},"function":"stats","selector":"'${data:0:10}'","signature":"stats(uint256[])"}'
  # A struct argument by component names.
  run ethcall calldata --abi "$ABI" checkPoint --json-args '[{"x":-1,"y":2}]'
  check "struct argument as an object" test "$out" = "$(ethcall calldata 'checkPoint((int8,uint24))' '(-1,2)')"
else
  bad "solc compiles Offline.sol" "$(tail -5 "$T/solc.log")"
fi

# --- ABI file errors
run ethcall calldata --abi "$T/missing.abi" f
expect "missing ABI file" 66
expect_err "names the file" "missing.abi"
echo '[{"type":"function","name":"f","inputs":[{"name":"a","type":"uint7"}]}]' >"$T/bad.abi"
run ethcall calldata --abi "$T/bad.abi" f 1
expect "invalid ABI file" 65
expect_err "names file and entry" "bad.abi: abi[0]"
echo '[{"type":' >"$T/broken.abi"
run ethcall calldata --abi "$T/broken.abi" f 1
expect "ABI that is not JSON" 65
expect_err "says where" "invalid JSON at column"

# --- decode-event with one signature
topic0=$(ethcall keccak 'Transfer(address,address,uint256)')
log='{"address":"0x5fbdb2315678afecb367f032d93f642f64180aa3","topics":["'$topic0'","0x000000000000000000000000f39fd6e51aad88f6f4ce6ab8827279cfffb92266","0x00000000000000000000000070997970c51812dc3a010c7d01b50e0d17dc79c8"],"data":"0x0000000000000000000000000000000000000000000000000de0b6b3a7640000","blockNumber":"0x10","blockHash":"0x01","transactionHash":"0x02","logIndex":"0x3","removed":false}'
run ethcall decode-event --sig 'event Transfer(address indexed from, address indexed to, uint256 value)' "$log"
expect "decode-event" 0 '{"address":"0x5fbdb2315678afecb367f032d93f642f64180aa3","args":{"from":"0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266","to":"0x70997970C51812dc3A010C7d01b50e0d17dc79C8","value":"1000000000000000000"},"block_hash":"0x01","block_number":16,"event":"Transfer","log_index":3,"removed":false,"signature":"Transfer(address,address,uint256)","tx_hash":"0x02"}'
run_in "$log" ethcall decode-event --sig 'event Approval(address indexed owner, address indexed spender, uint256 value)'
case $out in *'"event":null'*'"topics":'*) ok ;; *) bad "an unknown log keeps its topics and data" ;; esac

# --- hostile and odd input: a clear error for that input, never a crash or "internal error"
python3 -c "n=100000;print('{\"data\":\"0x\",\"id\":'+'['*n+']'*n+'}');print('\"0x\"')" >"$T/deep"
ethcall keccak - <"$T/deep" >"$T/out" 2>"$T/err"
status=$? out=$(cat "$T/out") err=$(cat "$T/err")
expect "deeply nested JSON is a reject, the next line is answered" 65 '{"id":2,"result":"0xc5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"}'
expect_err "says how deep" "nested deeper than 128"
run ethcall abi-encode --json-args 'f(uint256)' "$(python3 -c "n=65000;print('['+'['*n+']'*n+']')")"
expect "deeply nested --json-args" 65
run ethcall abi-encode 'f(string)' $'\xff'
expect "a string argument that is not UTF-8" 65
expect_err "says UTF-8" "UTF-8"
run ethcall abi-encode 'f(uint256)' $'\xff'
expect "a number argument that is not UTF-8" 65
run ethcall abi-encode 'f(string)' -- -v
expect "an argument that looks like a flag, after --" 0 "$(ethcall abi-encode --json-args 'f(string)' '["-v"]')"
run ethcall abi-encode 'f(int256)' -5
expect "a negative number needs no --" 0 "$(ethcall abi-encode --json-args 'f(int256)' '[-5]')"
run ethcall abi-encode 'f(uint256)' 1 --bogus
expect "an unknown long flag among ARGS" 64
run ethcall keccak hello extra
expect "an extra argument to a command that takes none" 64
run_in '"0x"' ethcall abi-decode 'f(uint2)(uint256)' -
expect "a bad SIG with DATA from stdin" 65
expect_err "names the type" "uint2"
run_in "$(printf '%s\n' '{"topics":[],"data":"0x","removed":"x"}' '{"topics":[],"data":"0x"}')" ethcall decode-event --sig 'event E() anonymous'
expect "a bad field in one log does not stop the next" 65 '{"address":null,"args":{},"block_hash":null,"block_number":null,"event":"E","log_index":null,"removed":false,"signature":"E()","tx_hash":null}'
expect_err "names the field" "stdin:1: field \"removed\""
run_in "$(printf '%s\n' '{"topics":[],"data":"0x","blockNumber":"12"}')" ethcall decode-event --sig 'event E() anonymous'
expect "a block number that is not a hex quantity" 65
run_in "$(printf '%s\n' '"0x01"' 'bad' '"0x02"')" ethcall keccak - --rejects -
check "--rejects - keeps input order" test "$(echo "$out" | cut -c1-20 | tr '\n' ' ')" = '{"id":1,"result":"0x {"source":"stdin","l {"id":3,"result":"0x '
run_in "$(printf '%s\n' '' '"0x01"' '   ' '')" ethcall keccak -
expect "empty lines are skipped" 0 '{"id":2,"result":"0x5fe7f977e71dba2ea1a68e21057beebb9be2ac30c6410aa38d4f3fbe41dcffd2"}'
run ethcall abi-encode --json-args '(uint256,int256)' '[18446744073709551616, -18446744073709551617]'
expect "JSON integers beyond 64 bits are exact" 0 "$(ethcall abi-encode '(uint256,int256)' 18446744073709551616 -18446744073709551617)"
run ethcall abi-encode --json-args '(uint256)' '[1.5]'
expect "a fractional JSON number for an integer" 65
run ethcall abi-encode --json-args '(uint256)' '[1e3]'
expect "an exponent JSON number for an integer" 65

finish
