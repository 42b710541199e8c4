/**
 * @module server/providers/token-header
 * Types that send the shared token in clear in a header: `gitlab` (`X-Gitlab-Token`, events from
 * `X-Gitlab-Event`) and `harbor` (`Authorization`, the bare token, no `Bearer`). Flux compares
 * with `!=`; here the comparison is constant-time.
 */
import { Header, secretsEqual } from "../../shared";
import { checkEvent } from "./events";
import { accept, refuse, type Validator } from "./types";

export const validateGitLab: Validator = (request, { spec, secret }) => {
  const token = request.headers.get(Header.gitlabToken);
  if (token === null) return refuse(`missing ${Header.gitlabToken} header`);
  if (!secretsEqual(token, secret.token ?? ""))
    return refuse(`${Header.gitlabToken} does not match the receiver's token`);
  const event = request.headers.get(Header.gitlabEvent);
  const refused = checkEvent(spec.events, event, Header.gitlabEvent);
  if (refused) return refuse(refused);
  return accept(request, event ?? undefined);
};

export const validateHarbor: Validator = (request, { secret }) => {
  const token = request.headers.get(Header.authorization);
  if (token === null) return refuse(`missing ${Header.authorization} header`);
  if (!secretsEqual(token, secret.token ?? ""))
    return refuse(`${Header.authorization} does not match the receiver's token`);
  return accept(request);
};
