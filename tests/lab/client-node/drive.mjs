// The lab's API server driven by the official JavaScript client, as a user of
// it would: HTTPS with the kubeconfig's CA and token, list, create, an
// informer (list + watch), replace, a JSON patch (the client's default patch
// type), delete, and a 422 for an invalid object. Exits 0 when all went as
// against a real API server; prints what did not otherwise.
//
//   node drive.mjs KUBECONFIG
import * as k8s from '@kubernetes/client-node';

const kc = new k8s.KubeConfig();
kc.loadFromFile(process.argv[2]);
const core = kc.makeApiClient(k8s.CoreV1Api);
const net = kc.makeApiClient(k8s.NetworkingV1Api);
const namespace = 'default';
const failures = [];
let stopping = false;  // the informer's own stop aborts its watch: no failure
const check = (ok, what) => {
  if (!ok) failures.push(what);
};

const policy = (name, port) => ({
  apiVersion: 'networking.k8s.io/v1',
  kind: 'NetworkPolicy',
  metadata: {name},
  spec: {podSelector: {matchLabels: {app: 'db'}}, ingress: [{ports: [{port}]}]},
});

try {
  const namespaces = await core.listNamespace();
  check(namespaces.items.some((n) => n.metadata.name === 'kube-system'), 'list: kube-system is listed');

  // An informer sees a pod created after it started.
  const added = new Promise((resolve) => {
    const informer = k8s.makeInformer(kc, `/api/v1/namespaces/${namespace}/pods`,
                                      () => core.listNamespacedPod({namespace}));
    informer.on('add', (pod) => {
      if (pod.metadata.name === 'watched') resolve(informer);
    });
    informer.on('error', (err) => {
      if (!stopping) failures.push(`informer: ${err}`);
    });
    informer.start();
  });
  await new Promise((r) => setTimeout(r, 300));
  await core.createNamespacedPod({
    namespace,
    body: {metadata: {name: 'watched', labels: {app: 'db'}}, spec: {containers: [{name: 'c', image: 'x'}]}},
  });
  const timeout = new Promise((resolve) => setTimeout(() => resolve(null), 10000));
  const informer = await Promise.race([added, timeout]);
  check(informer !== null, 'informer: the created pod was seen');
  stopping = true;
  if (informer) await informer.stop();

  const created = await net.createNamespacedNetworkPolicy({namespace, body: policy('db', 5432)});
  check(created.spec.policyTypes?.join() === 'Ingress', 'create: policyTypes defaulted');
  check(created.spec.ingress[0].ports[0].protocol === 'TCP', 'create: protocol defaulted');

  const current = await net.readNamespacedNetworkPolicy({name: 'db', namespace});
  current.spec.ingress[0].ports[0].port = 3306;
  const replaced = await net.replaceNamespacedNetworkPolicy({name: 'db', namespace, body: current});
  check(replaced.spec.ingress[0].ports[0].port === 3306, 'replace: the new port is stored');

  const patched = await core.patchNamespacedPod({
    name: 'watched',
    namespace,
    body: [{op: 'add', path: '/metadata/labels/tier', value: 'backend'}],
  });
  check(patched.metadata.labels.tier === 'backend', 'patch: the JSON patch applied');

  try {
    await net.createNamespacedNetworkPolicy({namespace, body: policy('bad', 70000)});
    failures.push('422: an invalid policy was created');
  } catch (err) {
    check(err.code === 422, `422: got ${err.code}`);
    const body = typeof err.body === 'string' ? JSON.parse(err.body) : err.body;
    check(body?.reason === 'Invalid', `422: reason ${body?.reason}`);
  }

  await net.deleteNamespacedNetworkPolicy({name: 'db', namespace});
  try {
    await net.readNamespacedNetworkPolicy({name: 'db', namespace});
    failures.push('delete: the policy is still there');
  } catch (err) {
    check(err.code === 404, `delete: reading it again gave ${err.code}`);
  }
} catch (err) {
  failures.push(`unexpected: ${err}${err.body ? ' ' + JSON.stringify(err.body) : ''}`);
}

if (failures.length > 0) {
  console.log(failures.join('\n'));
  process.exit(1);
}
console.log('ok');
process.exit(0);
