%% bench_restart_worker — the gen_server child of the supervision rows
%% (bench_restart, bench_restartrate). Its start argument says which:
%%   {plain, Counter}  counts its start in an atomics array and answers
%%                     ping with {StartNumber, OsPid}; crashes on the
%%                     cast `crash` (handle_cast returns {stop, crash, _}).
%%   {port, Counter}   also opens a port to /bin/cat (line mode, with
%%                     exit_status) in init; ping {ping, N} writes N to cat
%%                     and answers {Echo, CatOsPid} once cat echoes the
%%                     line; when cat dies (SIGKILL) the port reports its
%%                     exit status and the server stops with
%%                     {port_exit, Status}.
%%   {crasher, Counter, Burst, Target, Main}
%%                     counts its start, tells Main `burst` when that start
%%                     is number Burst and `done` when it is number Target,
%%                     and stops at once (init returns {continue, crash};
%%                     handle_continue stops with crash).
-module(bench_restart_worker).
-behaviour(gen_server).
-export([start_link/2, init/1, handle_call/3, handle_cast/2, handle_info/2,
         handle_continue/2]).

start_link(Name, Arg) ->
    case Name of
        none -> gen_server:start_link(?MODULE, Arg, []);
        _ -> gen_server:start_link({local, Name}, ?MODULE, Arg, [])
    end.

init({plain, Counter}) ->
    {ok, #{start => atomics:add_get(Counter, 1, 1)}};
init({port, Counter}) ->
    Port = open_port({spawn_executable, "/bin/cat"},
                     [binary, {line, 64}, exit_status, use_stdio]),
    {os_pid, OsPid} = erlang:port_info(Port, os_pid),
    {ok, #{start => atomics:add_get(Counter, 1, 1), port => Port, os_pid => OsPid}};
init({crasher, Counter, Burst, Target, Main}) ->
    case atomics:add_get(Counter, 1, 1) of
        Burst -> Main ! burst;
        Target -> Main ! done;
        _ -> ok
    end,
    {ok, #{}, {continue, crash}}.

handle_continue(crash, S) ->
    {stop, crash, S}.

handle_call(ping, _From, S = #{start := Start}) ->
    {reply, {Start, list_to_integer(os:getpid())}, S};
handle_call({ping, N}, _From, S = #{port := Port, os_pid := OsPid}) ->
    port_command(Port, [integer_to_binary(N), $\n]),
    receive
        {Port, {data, {eol, Line}}} -> {reply, {binary_to_integer(Line), OsPid}, S};
        {Port, {exit_status, Status}} -> {stop, {port_exit, Status}, S}
    after 5000 -> {stop, port_timeout, S}
    end.

handle_cast(crash, S) ->
    {stop, crash, S}.

handle_info({Port, {exit_status, Status}}, S = #{port := Port}) ->
    {stop, {port_exit, Status}, S};
handle_info(_Other, S) ->
    {noreply, S}.
