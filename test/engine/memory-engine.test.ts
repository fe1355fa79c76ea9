import { MemoryEngine } from "../../src/engine/memory/memory-engine.js";
import { engineContract } from "./contract.js";

engineContract("memory", {
  async create({ historySize }) {
    const engine = new MemoryEngine({ historySize });
    await engine.start();
    return engine;
  },
});
