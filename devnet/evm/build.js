// Compile devnet/evm/contracts/*.sol with solcjs (standard JSON) into devnet/evm/artifacts/<Contract>.json.
// Usage (from the repo root): node devnet/evm/build.js
const fs = require("fs");
const path = require("path");
const solc = require(path.join(__dirname, "..", "node_modules", "solc"));

const contractsDir = path.join(__dirname, "contracts");
const outDir = path.join(__dirname, "artifacts");
const sources = {};
for (const f of fs.readdirSync(contractsDir).filter((f) => f.endsWith(".sol")).sort()) {
  sources[f] = { content: fs.readFileSync(path.join(contractsDir, f), "utf8") };
}
const input = {
  language: "Solidity",
  sources,
  settings: {
    optimizer: { enabled: true, runs: 200 },
    evmVersion: "cancun",
    outputSelection: { "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] } },
  },
};
// Imports such as "@openzeppelin/contracts/..." resolve to the pinned npm packages in devnet/node_modules.
function findImports(importPath) {
  const file = path.join(__dirname, "..", "node_modules", importPath);
  return fs.existsSync(file) ? { contents: fs.readFileSync(file, "utf8") } : { error: "not found: " + importPath };
}
const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));
const errors = (output.errors || []).filter((e) => e.severity === "error");
for (const e of output.errors || []) console.error(e.formattedMessage);
if (errors.length) process.exit(1);
fs.mkdirSync(outDir, { recursive: true });
for (const [file, contracts] of Object.entries(output.contracts)) {
  if (!(file in sources)) continue; // imported library sources: no artifacts of their own
  for (const [name, c] of Object.entries(contracts)) {
    const artifact = {
      contractName: name,
      sourceName: file,
      compiler: "solcjs " + solc.version(),
      abi: c.abi,
      bytecode: "0x" + c.evm.bytecode.object,
      deployedBytecode: "0x" + c.evm.deployedBytecode.object,
    };
    fs.writeFileSync(path.join(outDir, name + ".json"), JSON.stringify(artifact, null, 1) + "\n");
    console.log("wrote", name);
  }
}
