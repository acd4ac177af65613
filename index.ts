import { createProgram } from "./infra/program";

const program = createProgram();

export const url = program.url;
export const callbackUrl = program.callbackUrl;
export const store = program.store;
export const storeResource = program.storeResource;
