/* exec_docker.h — the Docker backend: every task in its own container,
 * created through the Engine API (docker_api.h) with the isolation defaults
 * of exec_docker_create_body, labelled with its task id and host so a
 * restarted agent finds it again.
 *
 * Per run: prepare pulls the image when the daemon lacks it (progress into
 * the task's log; a missing image ends as image_not_found), start creates
 * and starts the container and a watcher thread that follows its output
 * into the log file, waits for its end and reads OOMKilled. Usage is read
 * from the container's cgroup while it runs.
 *
 * Warm containers (spec->reuse_warm): the container stays up idle after the
 * task, keyed by client, image, limits and GPUs; the next task of the same
 * key runs in it through the exec API, its scratch dir wiped first. Never
 * shared between clients; removed after EXEC_DOCKER_WARM_IDLE_MS idle. */
#ifndef GPUNODE_EXEC_DOCKER_H
#define GPUNODE_EXEC_DOCKER_H

#include <jansson.h>

#include "exec.h"

#define EXEC_DOCKER_WARM_IDLE_MS 30000
/* Where a task's scratch dir appears inside its container (its cwd and HOME). */
#define EXEC_DOCKER_WORKDIR "/work"
/* The user-defined network of tasks that ask for one (dockerd runs with
 * --bridge=none, so there is no default bridge). */
#define EXEC_DOCKER_NETWORK "gpunode"
/* How long a pull may take before the task fails as image_not_found. */
#define EXEC_DOCKER_PULL_TIMEOUT_MS 120000

/* $DOCKER_HOST when it is a unix:// address, else /var/run/docker.sock. */
const char *exec_docker_default_socket(void);

/* Opens the backend when the daemon answers GET /_ping on socket; else NULL
 * with ERR_UNAVAILABLE. host labels the containers; state_dir holds the
 * warm containers' scratch dirs. */
struct exec_backend *exec_docker_new(const char *socket, const char *host, const char *state_dir, struct err *e);

/* The body of POST /containers/create for s (new reference): labels, the
 * scratch dir (scratch_dir, absolute) as the only host path, no privilege,
 * no new privileges, all capabilities dropped but EXEC_DOCKER_CAPS, default
 * seccomp, limits, no network unless asked, exactly the task's GPU devices.
 * warm: the container idles (a shell loop) and tasks come through exec. */
json_t *exec_docker_create_body(const struct exec_spec *s, const char *scratch_dir, bool warm);

/* The environment of a task inside a container (exec_env_build with the
 * container's PATH and HOME) as a JSON array. */
json_t *exec_docker_env(const struct exec_spec *s);

/* What a container runs as root may still do: own and change its own files
 * and switch users; nothing on the network, devices, mounts or the kernel. */
#define EXEC_DOCKER_CAPS {"CHOWN", "DAC_OVERRIDE", "FOWNER", "SETUID", "SETGID"}

#endif
