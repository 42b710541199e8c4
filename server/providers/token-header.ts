/**
 * @module server/providers/token-header
 * Types that send the shared token in clear in a header: `gitlab` (`X-Gitlab-Token`, events from
 * `X-Gitlab-Event`) and `harbor` (`Authorization`, the bare token, no `Bearer`). Flux compares
 * with `!=`; here the comparison is constant-time.
 */
import { Header, secretsEqual } from "../../shared";
import { checkEvent } from "./events";
import { accept, refuse, type DeliveryRequest, type Validator } from "./types";

/** Why the token in `header` is not the receiver's, or undefined when it is. */
export function tokenHeaderRefusal(
  request: DeliveryRequest,
  header: string,
  token: string | Uint8Array,
): string | undefined {
  const sent = request.headers.get(header);
  if (sent === null) return `missing ${header} header`;
  return secretsEqual(sent, token) ? undefined : `${header} does not match the receiver's token`;
}

export const validateGitLab: Validator = (request, { spec, secret }) => {
  const wrong = tokenHeaderRefusal(request, Header.gitlabToken, secret.token ?? "");
  if (wrong) return refuse(wrong);
  const event = request.headers.get(Header.gitlabEvent);
  const refused = checkEvent(spec.events, event, Header.gitlabEvent);
  if (refused) return refuse(refused);
  return accept(request, event ?? undefined);
};

export const validateHarbor: Validator = (request, { secret }) => {
  const wrong = tokenHeaderRefusal(request, Header.authorization, secret.token ?? "");
  return wrong ? refuse(wrong) : accept(request);
};
