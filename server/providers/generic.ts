/**
 * @module server/providers/generic
 * `generic`: no authentication beyond the secret URL itself, as in Flux.
 */
import { accept, type Validator } from "./types";

export const validateGeneric: Validator = (request) => accept(request);
