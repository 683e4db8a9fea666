# Sourced by bench/history-server-check.sh and testdata/spark/make-fixtures.sh: installs Apache
# Spark the way shared/anchors/spark/run.sh does (the pyspark wheel from PyPI, used only for its
# jars and bin/ scripts; no Python workers) and sets:
#   SPARK_VERSION  (default 4.3.0)
#   SPARK_VENV     the venv (default ${XDG_CACHE_HOME:-$HOME/.cache}/ember/pyspark-$SPARK_VERSION;
#                  a persistent cache, not scratch: nothing of it goes to /tmp)
#   SPARK_PKG      the pyspark package dir (has jars/, bin/, sbin/: usable as SPARK_HOME)
#   JARS           $SPARK_PKG/jars
#   SPARK_JFLAGS   (array) the JVM flags Spark's launcher adds on Java 17+ (JavaModuleOptions)
SPARK_VERSION="${SPARK_VERSION:-4.3.0}"
SPARK_VENV="${SPARK_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/ember/pyspark-$SPARK_VERSION}"
if [ ! -x "$SPARK_VENV/bin/python" ]; then
  mkdir -p "$(dirname "$SPARK_VENV")"
  python3 -m venv "$SPARK_VENV"
fi
if ! "$SPARK_VENV/bin/python" -c "import pyspark,sys; sys.exit(pyspark.__version__ != '$SPARK_VERSION')" 2>/dev/null; then
  echo "installing pyspark==$SPARK_VERSION into $SPARK_VENV" >&2
  "$SPARK_VENV/bin/pip" install --quiet "pyspark==$SPARK_VERSION" >&2
fi
SPARK_PKG="$("$SPARK_VENV/bin/python" -c 'import os,pyspark; print(os.path.dirname(pyspark.__file__))')"
JARS="$SPARK_PKG/jars"
SPARK_JFLAGS=(-XX:+IgnoreUnrecognizedVMOptions --add-modules=jdk.incubator.vector
  --add-opens=java.base/java.lang=ALL-UNNAMED --add-opens=java.base/java.lang.invoke=ALL-UNNAMED
  --add-opens=java.base/java.lang.reflect=ALL-UNNAMED --add-opens=java.base/java.io=ALL-UNNAMED
  --add-opens=java.base/java.net=ALL-UNNAMED --add-opens=java.base/java.nio=ALL-UNNAMED
  --add-opens=java.base/java.util=ALL-UNNAMED --add-opens=java.base/java.util.concurrent=ALL-UNNAMED
  --add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED --add-opens=java.base/jdk.internal.ref=ALL-UNNAMED
  --add-opens=java.base/sun.nio.ch=ALL-UNNAMED --add-opens=java.base/sun.nio.cs=ALL-UNNAMED
  --add-opens=java.base/sun.security.action=ALL-UNNAMED --add-opens=java.base/sun.util.calendar=ALL-UNNAMED
  --add-opens=java.security.jgss/sun.security.krb5=ALL-UNNAMED
  -Dio.netty.tryReflectionSetAccessible=true -Dio.netty.allocator.type=pooled
  -Dio.netty.handler.ssl.defaultEndpointVerificationAlgorithm=NONE
  --sun-misc-unsafe-memory-access=allow --enable-native-access=ALL-UNNAMED)

# start_history_server LOG_DIR SERVER_LOG: starts Spark's History Server in the background on a
# free loopback port and waits (bounded, HS_START_TIMEOUT seconds, default 120) until its REST API
# answers. Sets HS_PID and HS_URL. Extra -D options may be given in HS_OPTS (a string).
start_history_server() {
  local logdir="$1" serverlog="$2" port deadline
  port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
  mkdir -p "$(dirname "$serverlog")/hs-tmp"   # java.io.tmpdir: the server's scratch stays beside its log
  # shellcheck disable=SC2086
  SPARK_LOCAL_IP=127.0.0.1 java "${SPARK_JFLAGS[@]}" -XX:-UsePerfData -Xmx1g -cp "$JARS/*" "-Djava.io.tmpdir=$(dirname "$serverlog")/hs-tmp" \
    "-Dspark.history.fs.logDirectory=file:$(cd "$logdir" && pwd)" \
    "-Dspark.history.ui.port=$port" -Dspark.history.fs.update.interval=1s \
    ${HS_OPTS:-} org.apache.spark.deploy.history.HistoryServer > "$serverlog" 2>&1 &
  HS_PID=$!
  HS_URL="http://127.0.0.1:$port"
  deadline=$((SECONDS + ${HS_START_TIMEOUT:-120}))
  until python3 -c "import urllib.request,sys; urllib.request.urlopen(sys.argv[1], timeout=5)" "$HS_URL/api/v1/applications" 2>/dev/null; do
    if ! kill -0 "$HS_PID" 2>/dev/null; then
      echo "History Server exited before answering; its log ($serverlog):" >&2; tail -40 "$serverlog" >&2; HS_PID=; return 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "History Server did not answer within ${HS_START_TIMEOUT:-120}s; log tail:" >&2; tail -40 "$serverlog" >&2; return 1
    fi
    sleep 0.3
  done
}

# stop_history_server: stops the server started by start_history_server (by its pid) and waits for it.
stop_history_server() {
  if [ -n "${HS_PID:-}" ]; then
    kill "$HS_PID" 2>/dev/null || true
    local i=0
    while kill -0 "$HS_PID" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
    kill -9 "$HS_PID" 2>/dev/null || true
    wait "$HS_PID" 2>/dev/null || true
    HS_PID=
  fi
}
