// @ts-check
import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["dist/", "node_modules/", "web/vendor/"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ["**/*.ts"],
    rules: {
      "@typescript-eslint/no-explicit-any": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "no-console": "error",
      eqeqeq: ["error", "smart"],
    },
  },
  {
    files: ["web/**/*.js"],
    languageOptions: { globals: { window: "readonly", document: "readonly", localStorage: "readonly", location: "readonly", io: "readonly", navigator: "readonly", URLSearchParams: "readonly", console: "readonly" } },
  },
);
