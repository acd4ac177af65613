// Mocha's globals (describe, it, before …) for the test files only. They are not in tsconfig.json's `types`:
// `pulumi up` type-checks the program with that tsconfig, and @types/mocha is a dev dependency that an
// `npm ci --omit=dev` deploy does not install.
/// <reference types="mocha" />
