/**
 * Webhook payloads of the providers that @octokit/webhooks-examples does not cover, in the shapes
 * their documentation gives (trimmed of fields no receiver reads: commit lists, avatars), with the
 * documentation's own example repositories. GitHub's come from @octokit/webhooks-examples
 * (payloads.ts); a test signs each at test time.
 *
 *   - GitLab: "Webhook events", Push events and Tag events;
 *   - Bitbucket Cloud: "Event payloads", Repository push (X-Event-Key repo:push);
 *   - Bitbucket Server and Data Center: "Event payload", repo:refs_changed;
 *   - Docker Hub: "Webhooks", example webhook payload;
 *   - Harbor: "Configure Webhook Notifications", PUSH_ARTIFACT;
 *   - Quay: "Repository notifications", Repository Push;
 *   - ACR: "Azure Container Registry webhook reference", push event;
 *   - gcr: Artifact Registry's Pub/Sub notification, as notification-controller's tests send it.
 */
import { githubExample } from "./payloads";

export function gitlabPush(): object {
  return {
    object_kind: "push",
    event_name: "push",
    before: "95790bf891e76fee5e1747ab589903a6a1f80f22",
    after: "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
    ref: "refs/heads/master",
    ref_protected: true,
    checkout_sha: "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
    user_id: 4,
    user_name: "John Smith",
    user_username: "jsmith",
    user_email: "john@example.com",
    project_id: 15,
    project: {
      id: 15,
      name: "Diaspora",
      description: "",
      web_url: "http://example.com/mike/diaspora",
      avatar_url: null,
      git_ssh_url: "git@example.com:mike/diaspora.git",
      git_http_url: "http://example.com/mike/diaspora.git",
      namespace: "Mike",
      visibility_level: 0,
      path_with_namespace: "mike/diaspora",
      default_branch: "master",
      homepage: "http://example.com/mike/diaspora",
      url: "git@example.com:mike/diaspora.git",
      ssh_url: "git@example.com:mike/diaspora.git",
      http_url: "http://example.com/mike/diaspora.git",
    },
    repository: {
      name: "Diaspora",
      url: "git@example.com:mike/diaspora.git",
      description: "",
      homepage: "http://example.com/mike/diaspora",
      git_http_url: "http://example.com/mike/diaspora.git",
      git_ssh_url: "git@example.com:mike/diaspora.git",
      visibility_level: 0,
    },
    commits: [],
    total_commits_count: 4,
  };
}

export function gitlabTagPush(): object {
  return {
    ...gitlabPush(),
    object_kind: "tag_push",
    event_name: "tag_push",
    before: "0000000000000000000000000000000000000000",
    after: "82b3d5ae55f7080f1e6022629cdb57bfae7cccc7",
    ref: "refs/tags/v1.0.0",
    ref_protected: true,
    checkout_sha: "82b3d5ae55f7080f1e6022629cdb57bfae7cccc7",
    total_commits_count: 0,
  };
}

export function bitbucketCloudPush(): object {
  return {
    actor: { type: "user", display_name: "Emma", uuid: "{d301aafa-d676-4ee0-88be-962be7417567}", nickname: "emma" },
    repository: {
      type: "repository",
      name: "repo_name",
      full_name: "team_name/repo_name",
      uuid: "{b7a2a3c6-4a1c-4c09-8a43-5ac76ba3a1a4}",
      links: {
        self: { href: "https://api.bitbucket.org/2.0/repositories/team_name/repo_name" },
        html: { href: "https://bitbucket.org/team_name/repo_name" },
        avatar: { href: "https://bytebucket.org/ravatar/%7Bb7a2a3c6-4a1c-4c09-8a43-5ac76ba3a1a4%7D?ts=default" },
      },
      scm: "git",
      is_private: true,
    },
    push: {
      changes: [
        {
          new: {
            type: "branch",
            name: "master",
            target: {
              type: "commit",
              hash: "709d658dc5b6d6afcd46049c2f332ee3f515a67d",
              message: "new commit message\n",
              date: "2015-06-09T03:34:49+00:00",
            },
          },
          old: {
            type: "branch",
            name: "master",
            target: { type: "commit", hash: "1e65c05c1d5171631d92438a13901ca7dae9618c" },
          },
          created: false,
          forced: false,
          closed: false,
          commits: [],
          truncated: false,
        },
      ],
    },
  };
}

export function bitbucketServerRefsChanged(): object {
  return {
    eventKey: "repo:refs_changed",
    date: "2017-09-19T09:58:11+1000",
    actor: {
      name: "admin",
      emailAddress: "admin@example.com",
      id: 1,
      displayName: "Administrator",
      active: true,
      slug: "admin",
      type: "NORMAL",
    },
    repository: {
      slug: "repository",
      id: 84,
      name: "repository",
      scmId: "git",
      state: "AVAILABLE",
      statusMessage: "Available",
      forkable: true,
      project: { key: "PROJ", id: 84, name: "project", public: false, type: "NORMAL" },
      public: false,
      links: {
        clone: [
          { href: "ssh://git@bitbucket.example.com:7999/proj/repository.git", name: "ssh" },
          { href: "https://bitbucket.example.com/scm/proj/repository.git", name: "http" },
        ],
        self: [{ href: "https://bitbucket.example.com/projects/PROJ/repos/repository/browse" }],
      },
    },
    changes: [
      {
        ref: { id: "refs/heads/master", displayId: "master", type: "BRANCH" },
        refId: "refs/heads/master",
        fromHash: "ecddabb624f6f5ba43816f5926e580a5f680a932",
        toHash: "178864a7d521b6f5e720b386b2c2b0ef8563e0dc",
        type: "UPDATE",
      },
    ],
  };
}

export function dockerHubPush(): object {
  return {
    callback_url:
      "https://registry.hub.docker.com/u/svendowideit/testhook/hook/2141b5bi5i5b02bec211i4eeih0242eg11000a/",
    push_data: { pushed_at: 1417566161, pusher: "trustedbuilder", tag: "latest" },
    repository: {
      comment_count: 0,
      date_created: 1417494799,
      description: "",
      full_description: "Docker Hub based automated build from a GitHub repo",
      is_official: false,
      is_private: true,
      is_trusted: true,
      name: "testhook",
      namespace: "svendowideit",
      owner: "svendowideit",
      repo_name: "svendowideit/testhook",
      repo_url: "https://registry.hub.docker.com/u/svendowideit/testhook/",
      star_count: 0,
      status: "Active",
    },
  };
}

export function harborPushArtifact(): object {
  return {
    type: "PUSH_ARTIFACT",
    occur_at: 1586922308,
    operator: "admin",
    event_data: {
      resources: [
        {
          digest: "sha256:8a9e9863dbb6e10edb5adfe917c00da84e1700fa76e7ed02476aa6e6fb8ee0d8",
          tag: "latest",
          resource_url: "hub.harbor.com/test-webhook/debian:latest",
        },
      ],
      repository: {
        date_created: 1586922308,
        name: "debian",
        namespace: "test-webhook",
        repo_full_name: "test-webhook/debian",
        repo_type: "private",
      },
    },
  };
}

export function quayPush(): object {
  return {
    name: "repository",
    repository: "mynamespace/repository",
    namespace: "mynamespace",
    docker_url: "quay.io/mynamespace/repository",
    homepage: "https://quay.io/repository/mynamespace/repository",
    updated_tags: ["latest"],
  };
}

export function acrPush(): object {
  return {
    id: "cb8c3971-9adc-488b-bdd8-43cbb4974ff5",
    timestamp: "2017-11-17T16:52:01.343145347Z",
    action: "push",
    target: {
      mediaType: "application/vnd.docker.distribution.manifest.v2+json",
      size: 524,
      digest: "sha256:80f0d5c8786bb9e621a45ece0db56d11cdc624ad20da9fe62e9d25490f331d7d",
      length: 524,
      repository: "hello-world",
      tag: "v1",
    },
    request: {
      id: "3cbb6949-7549-4fa1-86cd-a6d5451dffc7",
      host: "myregistry.azurecr.io",
      method: "PUT",
      useragent: "docker/17.09.0-ce go/go1.8.3 git-commit/afdb6d4 kernel/4.10.0-27-generic os/linux arch/amd64",
    },
  };
}

/** The Pub/Sub push envelope of an Artifact Registry notification, its data base64 JSON. */
export function gcrMessage(): object {
  const data = {
    action: "INSERT",
    digest:
      "us-east1-docker.pkg.dev/my-project/my-repo/hello-world@sha256:6ec128e26cd5c7a4e7a46b1a0a5e5a7f1a7a5b4e5c0c6c1b9f7e6d3a2b1c0d9e",
    tag: "us-east1-docker.pkg.dev/my-project/my-repo/hello-world:1.1",
  };
  return {
    message: {
      data: Buffer.from(JSON.stringify(data)).toString("base64"),
      messageId: "136969346945",
      publishTime: "2026-08-07T16:12:44.123Z",
    },
    subscription: "projects/my-project/subscriptions/my-subscription",
  };
}

/**
 * A real GitHub payload (@octokit/webhooks-examples) about another repository: the example's
 * repository fields spelled for `owner/name`, everything else as GitHub sent it; `ref` replaced
 * when given.
 */
export function githubPayloadFor(event: string, index: number, owner: string, name: string, ref?: string): string {
  const payload = JSON.parse(githubExample(event, index));
  const repo = payload.repository;
  Object.assign(repo, {
    name,
    full_name: `${owner}/${name}`,
    html_url: `https://github.com/${owner}/${name}`,
    clone_url: `https://github.com/${owner}/${name}.git`,
    git_url: `git://github.com/${owner}/${name}.git`,
    ssh_url: `git@github.com:${owner}/${name}.git`,
    svn_url: `https://github.com/${owner}/${name}`,
    url: `https://api.github.com/repos/${owner}/${name}`,
  });
  if (ref !== undefined) payload.ref = ref;
  return JSON.stringify(payload);
}
