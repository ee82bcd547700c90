%% bench_xnode — what the two-node Erlang benchmarks share: make this node
%% a distributed one (short names, epmd on loopback) and start a second
%% node with the peer module, with the same schedulers and code path, on
%% the same host. Erlang distribution runs over TCP whatever the row's
%% transport argument says (it has no ipc carrier by default).
-module(bench_xnode).
-export([transport/1, start/0, stop/1]).

%% Checks the transport argument (proc, ipc or tcp) and returns what
%% actually carries the messages.
transport([T | _]) when T =:= "proc"; T =:= "ipc"; T =:= "tcp" -> "tcp";
transport(_) -> bench_common:fail("transport must be proc, ipc or tcp", []).

%% Returns {Peer, Node}: the controlling peer process and the new node.
start() ->
    os:cmd("epmd -daemon"),
    Id = os:getpid(),
    case net_kernel:start([list_to_atom("xbench_a_" ++ Id), shortnames]) of
        {ok, _} -> ok;
        {error, Why} -> bench_common:fail("cannot start distribution: ~p", [Why])
    end,
    Ebin = filename:dirname(code:which(?MODULE)),
    {ok, Peer, Node} = peer:start_link(#{name => list_to_atom("xbench_b_" ++ Id),
                                         args => ["+S", "2", "-pa", Ebin]}),
    {Peer, Node}.

stop(Peer) ->
    peer:stop(Peer).
