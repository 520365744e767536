# Certificates and kubeconfigs of the real cluster (sourced by cluster.sh). One CA signs
# everything; the API server's certificate names every address clients use.

# cert NAME CN O [SANS]: $NPC_STATE/pki/NAME.{key,crt}, signed by the cluster CA.
cert() {
  local name="$1" cn="$2" org="$3" sans="${4:-}" pki="$NPC_STATE/pki"
  [ -f "$pki/$name.crt" ] && return
  local subj="/CN=$cn"
  [ -n "$org" ] && subj="/O=$org$subj"
  openssl genrsa -out "$pki/$name.key" 2048 2>/dev/null
  openssl req -new -key "$pki/$name.key" -subj "$subj" -out "$pki/$name.csr" 2>/dev/null
  local ext="$pki/$name.ext"
  {
    echo "basicConstraints=CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=serverAuth,clientAuth"
    [ -n "$sans" ] && echo "subjectAltName=$sans"
  } >"$ext"
  openssl x509 -req -in "$pki/$name.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
    -days 365 -sha256 -extfile "$ext" -out "$pki/$name.crt" 2>/dev/null
  rm -f "$pki/$name.csr" "$ext"
}

# kubeconfig FILE USER-CERT SERVER
kubeconfig() {
  local file="$1" user="$2" server="$3" pki="$NPC_STATE/pki"
  cat >"$file" <<KC
apiVersion: v1
kind: Config
clusters:
- name: netpol-cluster
  cluster:
    server: $server
    certificate-authority-data: $(base64 -w0 <"$pki/ca.crt")
users:
- name: $user
  user:
    client-certificate-data: $(base64 -w0 <"$pki/$user.crt")
    client-key-data: $(base64 -w0 <"$pki/$user.key")
contexts:
- name: netpol-cluster
  context: {cluster: netpol-cluster, user: $user}
current-context: netpol-cluster
KC
  chmod 0600 "$file"
}

make_pki() {
  local pki="$NPC_STATE/pki"
  mkdir -p "$pki"
  chmod 0700 "$pki"
  if [ ! -f "$pki/ca.crt" ]; then
    openssl genrsa -out "$pki/ca.key" 2048 2>/dev/null
    openssl req -x509 -new -key "$pki/ca.key" -subj "/CN=netpol-cluster-ca" -days 365 -sha256 \
      -out "$pki/ca.crt" 2>/dev/null
  fi
  cert apiserver kube-apiserver "" \
    "IP:127.0.0.1,IP:$NPC_FABRIC_IP,IP:$NPC_KUBERNETES_SVC_IP,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  cert apiserver-kubelet-client kube-apiserver-kubelet-client system:masters
  cert admin kubernetes-admin system:masters
  cert controller-manager system:kube-controller-manager ""
  cert scheduler system:kube-scheduler ""
  cert kube-proxy system:kube-proxy system:node-proxier
  local i
  for i in $(seq 1 "$NPC_NODES"); do
    cert "kubelet-n$i" "system:node:$(node_name "$i")" system:nodes "IP:$(node_ip "$i"),DNS:$(node_name "$i")"
  done
  if [ ! -f "$pki/sa.key" ]; then
    openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
    openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
  fi
  local inside="https://$NPC_FABRIC_IP:6443"
  kubeconfig "$KUBECONFIG_ADMIN" admin "https://127.0.0.1:$NPC_API_PORT"
  kubeconfig "$NPC_STATE/controller-manager.kubeconfig" controller-manager "$inside"
  kubeconfig "$NPC_STATE/scheduler.kubeconfig" scheduler "$inside"
  kubeconfig "$NPC_STATE/kube-proxy.kubeconfig" kube-proxy "$inside"
  for i in $(seq 1 "$NPC_NODES"); do
    kubeconfig "$NPC_STATE/kubelet-n$i.kubeconfig" "kubelet-n$i" "$inside"
  done
}
